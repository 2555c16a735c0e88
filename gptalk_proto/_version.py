#: The version of gptalk-proto (and of its transports).
__version__ = "0.1.0"
