"""Provider adapters: one module per wire family, and the provider registry."""
