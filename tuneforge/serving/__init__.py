"""The HTTP model server (`tuneforge serve-model REF`): onnxruntime and tokenizers only, never torch.

    source.py    what REF names, the verified model folder, the alias watcher
    model.py     a loaded model and its identity (name, version, hashes), the outputs -> predictions call
    batching.py  dynamic micro-batching onto one inference thread
    follower.py  the model being served now; follows NAME@ALIAS and swaps atomically
    traffic.py   the sampled traffic log the drift monitor reads
    metrics.py   Prometheus metrics (prometheus-client)
    app.py       the FastAPI application: routes, request checks, lifespan
    server.py    uvicorn: the socket, worker processes, graceful shutdown
"""
