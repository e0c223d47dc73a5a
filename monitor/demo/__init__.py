"""The demo risk world: realistic e-commerce risk data with injected incidents and their ground truth."""
