"""The Neural Fourier Transform: group representations, latent transitions and analysis.

Latent convention used throughout: the latent of one observation is a matrix H of shape
(d_m, d_a), d_m rows ("multiplicity") and d_a columns ("action dimension"), and a group element
acts from the right, H' = H @ M with M of shape (d_a, d_a). Batched latents are (B, d_m, d_a).
"""
