"""Train codeseer's own code embedder: losses (InfoNCE, Matryoshka, OASIS order term), hard-negative
mining and the sentence-transformers training loop behind ``codeseer train``.

Heavy imports (torch, sentence-transformers) happen in the submodules, not here.
"""
