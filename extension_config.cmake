# Declares agnes to DuckDB's extension build system (extension-ci-tools).
# agnes is a Rust extension on the stable C API: it is built by cargo
# (`make debug` / `make release`), never compiled as part of DuckDB.
duckdb_extension_load(agnes
    DONT_LINK
    SOURCE_DIR ${CMAKE_CURRENT_LIST_DIR}
    LOAD_TESTS
    TEST_DIR ${CMAKE_CURRENT_LIST_DIR}/test/sql
)
