"""The public methods of `Limitr`, one class per kind of call over `Core`; `engine.limitr.Engine` joins them."""
