// exporters: see headers
