# lit configuration for mpcc's golden tests. Paths come from lit.site.cfg.py, which CMake
# writes into the build tree; tests run with that file passed as --param site_config=...
import os
import lit.formats

config.name = "mpcc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mp", ".test"]
config.excludes = ["Inputs"]
config.test_source_root = os.path.dirname(__file__)

site = lit_config.params.get("site_config")
if site and not getattr(config, "mpcc_site_loaded", False):
    config.mpcc_site_loaded = True
    lit_config.load_config(config, site)
# ctest runs each test file as its own lit process, in parallel. lit rewrites
# .lit_test_times.txt in its exec root at exit, and a process reading it while another
# writes it fails; so each ctest entry gets an exec root of its own.
exec_root = lit_config.params.get("exec_root")
if exec_root:
    config.test_exec_root = exec_root


config.substitutions.append(("%mpcc", config.mpcc_bin))
config.substitutions.append(("%examples", config.examples_dir))
config.substitutions.append(("%python", config.python))
config.environment["PATH"] = os.pathsep.join(
    [config.llvm_tools_dir, config.bin_dir, config.environment.get("PATH", os.environ["PATH"])])
for k in ("OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "ASAN_OPTIONS",
          "UBSAN_OPTIONS", "HOME", "TMPDIR"):
    if k in os.environ:
        config.environment[k] = os.environ[k]
# Tests that build a trainer (`mpcc -o`) go through mpicc: make it wrap this build's compiler,
# since a sanitized runtime links only with its own, and suppress Open MPI's allocations that
# outlive MPI_Finalize, as the e2e tests do (tests/CMakeLists.txt, E2E_ENV).
if getattr(config, "c_compiler", ""):
    config.environment["OMPI_CC"] = config.c_compiler
    config.environment["OMPI_MCA_mca_base_component_disable_dlclose"] = "1"
    config.environment["LSAN_OPTIONS"] = ("suppressions=" + config.lsan_suppressions +
                                          ":fast_unwind_on_malloc=0:print_suppressions=0")
