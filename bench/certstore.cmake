# certstore micro benchmarks: PFX opening, certificate parsing, and inventory parsing of a store's worth
# of script output (the agent does this for every inventory job).
add_executable(wincert_bench_certstore ${CMAKE_CURRENT_SOURCE_DIR}/certstore_bench.cpp)
target_link_libraries(wincert_bench_certstore PRIVATE wincert_certstore benchmark::benchmark wincert_warnings)
target_compile_definitions(wincert_bench_certstore PRIVATE
  WINCERT_CERTSTORE_SCRIPT_DIR="${PROJECT_SOURCE_DIR}/certstore/scripts")

# Inventory of 100 ... 10,000 certificates through WinRM against winhost-sim (driver: bench/inventory_scale.py).
if(TARGET wincert_agent_lib)
  add_executable(wincert_bench_inventory_scale ${CMAKE_CURRENT_SOURCE_DIR}/inventory_scale_bench.cpp)
  target_link_libraries(wincert_bench_inventory_scale PRIVATE wincert_agent_lib wincert_certstore wincert_winrm
    CLI11::CLI11 OpenSSL::Crypto wincert_warnings)
  wincert_asio_coroutines(wincert_bench_inventory_scale)
endif()
