"""Vectors and matrices in models: array expressions (:mod:`.node`), the parser's array algebra
(:mod:`.algebra`) and the ``[network]`` section (:mod:`.network`)."""
