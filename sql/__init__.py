"""The store schema, one DDL file per step; shipped in the wheel as package data ``monitor.sql``."""
