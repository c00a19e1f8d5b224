"""HTML drift reports (plotly): one page per (endpoint, window) and one timeline per endpoint."""
