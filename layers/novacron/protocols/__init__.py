"""Wire protocols NovaCron speaks: decoders and encoders, no AWS."""
