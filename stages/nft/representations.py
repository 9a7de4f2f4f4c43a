"""Irreducible real representations used as fixed transitions M(g) by g-NFT.

All matrices act from the right on latents H of shape (..., d_m, d_a): H' = H @ M(g).
"""

from __future__ import annotations

import torch


def rotation_matrix(angles: torch.Tensor) -> torch.Tensor:
    """Return the 2x2 rotations R(phi) = [[cos, -sin], [sin, cos]] of shape (..., 2, 2)."""
    cos, sin = torch.cos(angles), torch.sin(angles)
    return torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)


def so2_dimension(max_frequency: int) -> int:
    """Return d_a of the SO(2) representation with frequencies 0..max_frequency: 1 + 2L."""
    return 1 + 2 * max_frequency


def so2_representation(angles: torch.Tensor, max_frequency: int) -> torch.Tensor:
    """Return the block-diagonal SO(2) representation for angles (B,) in radians.

    Blocks: [1] for frequency 0, then R(k * theta) for k = 1..max_frequency, so the result has
    shape (B, 1 + 2L, 1 + 2L). It is orthogonal and a homomorphism: M(a) @ M(b) = M(a + b).
    """
    if max_frequency < 0:
        raise ValueError(f"invalid max_frequency {max_frequency}: must be >= 0")
    angles = torch.as_tensor(angles)
    dim = so2_dimension(max_frequency)
    out = torch.zeros(*angles.shape, dim, dim, dtype=angles.dtype, device=angles.device)
    out[..., 0, 0] = 1
    for k in range(1, max_frequency + 1):
        start = 2 * k - 1
        out[..., start : start + 2, start : start + 2] = rotation_matrix(k * angles)
    return out


def act(latents: torch.Tensor, transitions: torch.Tensor) -> torch.Tensor:
    """Apply transitions (B, d_a, d_a) to latents (B, d_m, d_a) from the right: H @ M."""
    return latents @ transitions


def so2_paired_representation(angles: torch.Tensor, num_blocks: int) -> torch.Tensor:
    """Return blockdiag R(j theta) for j = 0..F-1, shape (B, 2F, 2F), F = num_blocks.

    This is the E2 g-NFT layout, in which frequency 0 is a 2x2 identity block, so 16
    blocks give d_a = 32 with frequencies 0..15.
    """
    if num_blocks < 1:
        raise ValueError(f"invalid num_blocks {num_blocks}: must be >= 1")
    angles = torch.as_tensor(angles)
    dim = 2 * num_blocks
    out = torch.zeros(*angles.shape, dim, dim, dtype=angles.dtype, device=angles.device)
    for j in range(num_blocks):
        out[..., 2 * j : 2 * j + 2, 2 * j : 2 * j + 2] = rotation_matrix(j * angles)
    return out


def cyclic_representation(
    elements: torch.Tensor, order: int, max_frequency: int
) -> torch.Tensor:
    """Return the C_N representation of integer group elements j (B,), shape (B, d, d).

    Element j is the rotation by 2 pi j / N, and the blocks are those of
    `so2_representation`: [1] for frequency 0, then R(2 pi k j / N) for k = 1..L, so d =
    1 + 2L. Frequencies k and N - k give equivalent blocks, and for even N the block k =
    N/2 is -I, which splits into two 1x1 sign representations. Keep L < N/2 for distinct
    irreducible blocks.
    """
    if order < 1:
        raise ValueError(f"invalid group order {order}: must be >= 1")
    residues = torch.remainder(torch.as_tensor(elements), order)
    angles = (2 * torch.pi / order) * residues.to(torch.get_default_dtype())
    return so2_representation(angles, max_frequency)


def so3_dimension(max_degree: int) -> int:
    """Return d_a of the SO(3) representation with degrees 0..L, (L + 1)^2."""
    return (max_degree + 1) ** 2


def representation_dimension(group: str, max_frequency: int) -> int:
    """Return d_a of the representation of `group` with frequencies or degrees 0..L.

    "so2" and "cyclic" give 1 + 2L, "so3" gives (L + 1)^2, and "so2_paired" (the E2
    layout of `so2_paired_representation`, L + 1 blocks of size 2) gives 2L + 2.
    """
    if group in ("so2", "cyclic"):
        return so2_dimension(max_frequency)
    if group == "so3":
        return so3_dimension(max_frequency)
    if group == "so2_paired":
        return 2 * (max_frequency + 1)
    expected = "so2, cyclic, so3 or so2_paired"
    raise ValueError(f"unknown group {group!r}: expected {expected}")


SO3_DEGREE1_BASIS = (1, 2, 0)
"""Axis order (y, z, x) of the degree-1 block: D_1(R) = R[p][:, p], p = (1, 2, 0)."""


def so3_generators(degree: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Return the real so(3) generators (G_x, G_y, G_z) of degree l, (3, 2l+1, 2l+1).

    They are built from the angular-momentum operators J_z, J_+ and J_- in the complex
    basis m = -l..l, as G_k = C (-i J_k) C^H with a unitary C from complex to real
    spherical harmonics. The G_k are real and antisymmetric and satisfy [G_x, G_y] = G_z
    cyclically, the relations of the 3x3 generators L_k with expm(theta L_k) = rotation
    by theta about axis k. The row signs of C make the degree-1 generators equal L_k in
    axis order (y, z, x), with no sign changes.
    """
    if degree < 0:
        raise ValueError(f"invalid degree {degree}: must be >= 0")
    size = 2 * degree + 1
    m = torch.arange(-degree, degree + 1, dtype=torch.float64)
    raising = torch.zeros(size, size, dtype=torch.complex128)
    ladder = torch.sqrt(degree * (degree + 1) - m[:-1] * (m[:-1] + 1))
    raising[torch.arange(1, size), torch.arange(size - 1)] = ladder.to(torch.complex128)
    lowering = raising.conj().T
    j_x = (raising + lowering) / 2
    j_y = (raising - lowering) / 2j
    j_z = torch.diag(m).to(torch.complex128)

    change = torch.zeros(size, size, dtype=torch.complex128)
    half = 2**-0.5
    for row, order in enumerate(range(-degree, degree + 1)):
        a = abs(order)
        if order > 0:
            change[row, degree + a] = (-1) ** a * half
            change[row, degree - a] = half
        elif order == 0:
            change[row, degree] = 1
        else:
            change[row, degree - a] = -1j * half
            change[row, degree + a] = 1j * (-1) ** a * half
    generators = [change @ (-1j * j_k) @ change.conj().T for j_k in (j_x, j_y, j_z)]
    return torch.stack(generators).real.to(dtype)


def quaternion_to_matrix(quaternions: torch.Tensor) -> torch.Tensor:
    """Convert quaternions (..., 4), real part first, to rotation matrices (..., 3, 3).

    The input is normalised first, and q and -q give the same matrix.
    """
    w, x, y, z = torch.nn.functional.normalize(quaternions, dim=-1).unbind(-1)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def matrix_to_quaternion(rotations: torch.Tensor) -> torch.Tensor:
    """Convert rotation matrices (..., 3, 3) to unit quaternions (w, x, y, z), w >= 0.

    Uses Shepperd's method: of four candidate formulas, the one with the largest square
    root is taken, which avoids dividing by a small number at any rotation angle.
    """
    r = rotations
    r00, r11, r22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    # squares[i] = 4 q_i^2 for q = (w, x, y, z).
    squares = torch.stack(
        [
            1 + r00 + r11 + r22,
            1 + r00 - r11 - r22,
            1 - r00 + r11 - r22,
            1 - r00 - r11 + r22,
        ],
        -1,
    )
    d21 = r[..., 2, 1] - r[..., 1, 2]
    d02 = r[..., 0, 2] - r[..., 2, 0]
    d10 = r[..., 1, 0] - r[..., 0, 1]
    s01 = r[..., 0, 1] + r[..., 1, 0]
    s02 = r[..., 0, 2] + r[..., 2, 0]
    s12 = r[..., 1, 2] + r[..., 2, 1]
    # Row i contains 4 q_i q, so dividing it by 2 sqrt(squares[i]) = 4 |q_i| gives +-q.
    products = torch.stack(
        [
            torch.stack([squares[..., 0], d21, d02, d10], -1),
            torch.stack([d21, squares[..., 1], s01, s02], -1),
            torch.stack([d02, s01, squares[..., 2], s12], -1),
            torch.stack([d10, s02, s12, squares[..., 3]], -1),
        ],
        -2,
    )
    best = squares.argmax(dim=-1)
    index = best[..., None, None].expand(*best.shape, 1, 4)
    row = torch.gather(products, -2, index)[..., 0, :]
    scale = torch.gather(squares, -1, best[..., None]).clamp_min(1e-12).sqrt()
    quaternion = row / (2 * scale)
    quaternion = torch.where(quaternion[..., :1] < 0, -quaternion, quaternion)
    return torch.nn.functional.normalize(quaternion, dim=-1)


def quaternion_to_rotation_vector(quaternions: torch.Tensor) -> torch.Tensor:
    """Convert quaternions (..., 4), real part first, to rotation vectors (..., 3).

    A rotation vector is angle * axis, with the angle in [0, pi].
    """
    q = torch.nn.functional.normalize(quaternions, dim=-1)
    q = torch.where(q[..., :1] < 0, -q, q)
    w, v = q[..., 0], q[..., 1:]
    sin_half = v.norm(dim=-1)
    # angle / sin(angle / 2) tends to 2 / w = 2 as the rotation approaches the identity.
    small = sin_half < 1e-8
    ratio = 2 * torch.atan2(sin_half, w) / sin_half.clamp_min(1e-8)
    return v * torch.where(small, 2 / w, ratio)[..., None]


def euler_zyz_to_matrix(
    alpha: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor
) -> torch.Tensor:
    """Return R = Rz(alpha) @ Ry(beta) @ Rz(gamma), (..., 3, 3), angles in radians."""

    def about_axis(angle: torch.Tensor, first: int, second: int) -> torch.Tensor:
        angle = torch.as_tensor(angle)
        out = torch.zeros(*angle.shape, 3, 3, dtype=angle.dtype)
        out[..., range(3), range(3)] = 1
        out[..., first, first] = torch.cos(angle)
        out[..., second, second] = torch.cos(angle)
        out[..., first, second] = -torch.sin(angle)
        out[..., second, first] = torch.sin(angle)
        return out

    # Rz rotates x towards y, and Ry rotates z towards x.
    return about_axis(alpha, 0, 1) @ about_axis(beta, 2, 0) @ about_axis(gamma, 0, 1)


def wigner_d(rotation_vectors: torch.Tensor, degree: int) -> torch.Tensor:
    """Return the real Wigner-D matrix of degree l, shape (..., 2l+1, 2l+1).

    rotation_vectors: (..., 3), omega = angle * axis. D_l(R) = expm(sum_k omega_k G_k)
    with the generators of `so3_generators`, so D_l is orthogonal, D_l(R1 R2) = D_l(R1)
    D_l(R2) and D_l(R^T) = D_l(R)^T.
    """
    generators = so3_generators(degree, dtype=rotation_vectors.dtype)
    generators = generators.to(rotation_vectors.device)
    algebra = torch.einsum("...k,kij->...ij", rotation_vectors, generators)
    return torch.linalg.matrix_exp(algebra)


def so3_representation(rotations: torch.Tensor, max_degree: int) -> torch.Tensor:
    """Return blockdiag_{l=0..L} D_l(R), shape (..., (L+1)^2, (L+1)^2).

    rotations: (..., 3, 3). D is orthogonal and a homomorphism, D(R1 R2) = D(R1) @
    D(R2), with D(R^T) = D(R)^T, and its degree-1 block is R[p][:, p] with p =
    SO3_DEGREE1_BASIS. Applied from the right (H @ D), a left action x -> R x on the
    data corresponds to H @ D(R)^T = H @ D(R^T), because H @ D(R2^T) @ D(R1^T) = H @
    D((R1 R2)^T). g-NFT with absolute poses works with either choice.
    """
    quaternions = matrix_to_quaternion(rotations)
    return so3_representation_from_quaternions(quaternions, max_degree)


def so3_representation_from_quaternions(
    quaternions: torch.Tensor, max_degree: int
) -> torch.Tensor:
    """Return the D of `so3_representation` for quaternions (..., 4), w first."""
    if max_degree < 0:
        raise ValueError(f"invalid max_degree {max_degree}: must be >= 0")
    rotation_vectors = quaternion_to_rotation_vector(quaternions)
    dim = so3_dimension(max_degree)
    out = rotation_vectors.new_zeros(*rotation_vectors.shape[:-1], dim, dim)
    for degree in range(max_degree + 1):
        start = degree**2
        stop = start + 2 * degree + 1
        out[..., start:stop, start:stop] = wigner_d(rotation_vectors, degree)
    return out
