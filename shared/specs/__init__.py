"""Job specs, one module per family of kinds; the registry of kinds is ``shared.kinds``."""
