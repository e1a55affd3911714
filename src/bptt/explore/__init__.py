"""The explorable: the vanishing gradient's mechanism computed live in a browser page.

``weights`` holds the settings and the weight generator the page implements too;
``numbers`` computes every number the page shows with bptt itself (the test
vectors); ``page`` writes the self-contained page (``write_explorable``).
"""
