"""PSA adapters: the desk's system of record (ConnectWise, Zendesk, or a third party's entry point).

Nothing here imports httpx until an adapter is built (``registry.make_adapter``), so
the CLI's help and the app's start do not pay for it on a desk without a PSA.
"""
