"""The eager front end: Tensor, creation functions, math and shape ops, autograd, tracing."""
