"""nn.Modules and their input conventions. No I/O: weights are loaded by the engine."""
