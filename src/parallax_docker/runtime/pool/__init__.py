"""The warm pool: its rules (fit), its claim records (claims) and its policy (pool)."""
