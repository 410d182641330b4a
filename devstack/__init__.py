"""Starting payrecon's processes on one machine: used by `make run`, `make demo` and the tests."""
