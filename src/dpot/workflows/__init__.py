"""End-to-end workflows composed from the library's parts (data generation, training, evaluation, reports);
`dpot.workflows.demo` is what `dpot demo` runs."""
