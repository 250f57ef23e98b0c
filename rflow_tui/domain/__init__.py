"""The domain's vocabulary, shared by the store, the services and the AI layer.

Light on purpose (standard library only): ``ai`` may import it without pulling in
the store, and the store may import it without pulling in the AI layer.
"""
