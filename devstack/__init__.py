"""The development stack: start localbase, workers and the dock as child processes, for
``make up`` (``python -m devstack.up``), the tests and the benchmarks; plus the documents and
the TCP proxy they use. Tests and benchmarks import it; nothing here imports them."""
