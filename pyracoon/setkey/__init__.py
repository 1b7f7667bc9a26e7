"""``pysetkey``: KAME/ipsec-tools setkey over pyracoon's PF_KEY kernel interface.

``lexer`` and ``parser`` turn setkey's input language into typed commands (``policy`` is
libipsec's policy sub-language), ``messages`` turns commands into SADB messages, ``dump``
prints kernel answers in setkey's layouts, ``algorithms`` holds the name tables and ``cli``
is the program.
"""
