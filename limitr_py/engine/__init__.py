"""The runtime: the `Limitr` façade over the compiled policy, a store and a clock."""
