"""streamscore's processes and the code they share, one room per role (the README's "Layout").

At the root only the leaves every room uses, ``events`` (the event contract) and ``settings``, and the CLI
(``cli``, the ``streamscore`` console script), which starts whichever process a command names.
"""
