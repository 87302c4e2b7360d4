"""Routes per audience: `score` (real-time scorer), `analyst`, `admin`, `ops`."""
