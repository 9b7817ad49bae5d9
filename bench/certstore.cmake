# certstore micro benchmarks: PFX opening, certificate parsing, and inventory parsing of a store's worth
# of script output (the agent does this for every inventory job).
add_executable(wincert_bench_certstore ${CMAKE_CURRENT_SOURCE_DIR}/certstore_bench.cpp)
target_link_libraries(wincert_bench_certstore PRIVATE wincert_certstore benchmark::benchmark wincert_warnings)
target_compile_definitions(wincert_bench_certstore PRIVATE
  WINCERT_CERTSTORE_SCRIPT_DIR="${PROJECT_SOURCE_DIR}/certstore/scripts")
