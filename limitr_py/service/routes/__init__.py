"""The `/v1` endpoint families, one router each, and the operations endpoints."""
