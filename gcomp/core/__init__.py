"""The dispatcher layer: tensor storage, the one ``bind`` function, interpreters, the reverse walk.

Both the eager front end and the autodiff pass sit on this package; it imports ``ir`` and
``lowering`` but nothing of the front end, so passes can use it without importing ``gcomp`` whole.
"""
