"""The retail agent's golden set (case files beside this module) and its harness."""
