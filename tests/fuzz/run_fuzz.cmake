# Runs a libFuzzer binary for about a minute: FUZZER, a writable CORPUS directory and
# read-only SEEDS directories. Any finding makes libFuzzer exit non-zero, which fails the
# test; the crashing input is left in the build directory (crash-*, leak-*, timeout-*).
file(MAKE_DIRECTORY ${CORPUS})
execute_process(COMMAND ${FUZZER} -max_total_time=60 -dict=${CMAKE_CURRENT_LIST_DIR}/mp.dict -timeout=30 -rss_limit_mb=2048
                        -max_len=65536 -print_final_stats=1 ${CORPUS} ${SEEDS}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzz_frontend found a problem (exit ${rc})")
endif()
