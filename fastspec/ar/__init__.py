"""Any-order autoregressive pipeline: marginal oracle, samplers, kernels."""
