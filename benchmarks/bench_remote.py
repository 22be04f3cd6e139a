"""asv benchmarks, fastspec.remote: digits_ar through a KServe server on 127.0.0.1 (issue 22)."""
import fastspec

METHODS = ["sequential", "block"]


class RemoteDigitsAR:
    params = (METHODS, [0, 20], [1, 4])
    param_names = ["method", "delay_ms", "max_in_flight"]
    timeout = 180
    number = 1
    repeat = 3

    def setup(self, method, delay_ms, max_in_flight):
        import fastspec.remote
        from fastspec.remote.server import start_server
        self.server = start_server(["digits_ar"], delay=delay_ms / 1000.0)
        self.model = fastspec.remote.ar_model(self.server.url, "digits_ar", n=64, q=4)
        fastspec.sample(self.model, n_samples=1, method=method, seed=0)   # compile, connect
        self.res = None

    def teardown(self, method, delay_ms, max_in_flight):
        self.model.marginals.close()
        self.server.stop()

    def time_64_samples(self, method, delay_ms, max_in_flight):
        import fastspec.remote
        fastspec.remote.sample(self.model, n_samples=64, method=method, seed=1,
                               max_in_flight=max_in_flight)

    def track_wall_over_round_trips_one_sample(self, method, delay_ms, max_in_flight):
        res = fastspec.sample(self.model, n_samples=1, method=method, seed=2)
        return res.stats.wall_seconds / res.stats.oracle_seconds
    track_wall_over_round_trips_one_sample.unit = "ratio"
