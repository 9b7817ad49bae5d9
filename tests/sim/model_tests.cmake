# Tests of winhost-sim's Windows model for the certificate-store operations (sim/winhost/model):
# every op run directly against the model (JSON in, JSON out, then the model's data inspected), checked
# against certstore/scripts/NAME.contract.json, with certificates, PFX files and CSRs checked by OpenSSL.
add_executable(winhost_model_tests
  ${CMAKE_CURRENT_LIST_DIR}/model_test_support.cpp
  ${CMAKE_CURRENT_LIST_DIR}/model_store_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/model_bindings_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/model_csr_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/model_crypto_test.cpp)
target_link_libraries(winhost_model_tests PRIVATE winhost_model winhost_sim_lib wincert_certstore OpenSSL::Crypto
  wincert_test_matchers GTest::gmock GTest::gtest_main wincert_warnings)
target_compile_definitions(winhost_model_tests PRIVATE
  WINCERT_CERTSTORE_SCRIPT_DIR="${PROJECT_SOURCE_DIR}/certstore/scripts"
  WINCERT_MODEL_EXAMPLE="${PROJECT_SOURCE_DIR}/sim/winhost/model/example-model.json")
gtest_discover_tests(winhost_model_tests TEST_PREFIX "model." DISCOVERY_TIMEOUT 60 PROPERTIES LABELS sim)

# End-to-end through the real WinRM client (the agent's WinrmScriptRunner) against a winhost-sim child process with --model FILE.
if(TARGET wincert_agent_lib AND TARGET winhost-sim)
  add_executable(winhost_model_e2e_tests
    ${CMAKE_CURRENT_LIST_DIR}/model_e2e_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/model_e2e_ops_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/model_test_support.cpp)
  target_link_libraries(winhost_model_e2e_tests PRIVATE wincert_agent_lib winhost_model winhost_sim_lib
    wincert_certstore wincert_winrm OpenSSL::Crypto OpenSSL::SSL wincert_test_matchers GTest::gmock GTest::gtest_main
    wincert_warnings)
  wincert_asio_coroutines(winhost_model_e2e_tests
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/model_e2e_test.cpp ${CMAKE_CURRENT_LIST_DIR}/model_e2e_ops_test.cpp)
  add_dependencies(winhost_model_e2e_tests winhost-sim)
  target_compile_definitions(winhost_model_e2e_tests PRIVATE
    WINCERT_CERTSTORE_SCRIPT_DIR="${PROJECT_SOURCE_DIR}/certstore/scripts"
    WINCERT_MODEL_EXAMPLE="${PROJECT_SOURCE_DIR}/sim/winhost/model/example-model.json"
    WINCERT_WINHOST_SIM="$<TARGET_FILE:winhost-sim>")
  gtest_discover_tests(winhost_model_e2e_tests TEST_PREFIX "model_e2e." DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300 LABELS sim)
endif()
