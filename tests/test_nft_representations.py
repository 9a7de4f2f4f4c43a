import math

import pytest
import torch

from stages.nft.representations import (
    SO3_DEGREE1_BASIS,
    cyclic_representation,
    euler_zyz_to_matrix,
    matrix_to_quaternion,
    quaternion_to_matrix,
    representation_dimension,
    so2_paired_representation,
    so2_representation,
    so3_generators,
    so3_representation,
    so3_representation_from_quaternions,
)

MAX_DEGREE = 4
DOUBLE = torch.float64


def random_rotations(count, seed):
    generator = torch.Generator().manual_seed(seed)
    quaternions = torch.randn(count, 4, generator=generator, dtype=DOUBLE)
    return quaternion_to_matrix(quaternions)


def is_orthogonal(matrices, atol=1e-10):
    identity = torch.eye(matrices.shape[-1], dtype=matrices.dtype)
    gram = matrices @ matrices.transpose(-2, -1)
    return torch.allclose(gram, identity.expand_as(gram), atol=atol)


def frequencies_from_phases(matrix, theta):
    """Return the sorted |arg lambda| / theta over the eigenvalues, rounded."""
    phases = torch.linalg.eigvals(matrix).angle()
    return sorted(round(abs(float(phase)) / theta) for phase in phases)


def test_so2_homomorphism_and_orthogonal():
    a = torch.tensor([0.3, -1.2, 2.9], dtype=DOUBLE)
    b = torch.tensor([1.1, 0.4, 2.5], dtype=DOUBLE)
    product = so2_representation(a, 5) @ so2_representation(b, 5)
    assert torch.allclose(product, so2_representation(a + b, 5), atol=1e-12)
    assert is_orthogonal(so2_representation(a, 5))


def test_so2_block_frequencies_zero_to_l():
    theta = 0.05
    matrix = so2_representation(torch.tensor([theta], dtype=DOUBLE), 6)[0]
    expected = [0] + sorted(2 * list(range(1, 7)))
    assert frequencies_from_phases(matrix, theta) == expected


def test_so2_paired_frequencies_zero_to_fifteen():
    theta = 0.03
    matrix = so2_paired_representation(torch.tensor([theta], dtype=DOUBLE), 16)[0]
    assert matrix.shape == (32, 32)
    assert frequencies_from_phases(matrix, theta) == sorted(2 * list(range(16)))


def test_cyclic_homomorphism_and_orthogonal():
    order = 7
    a = torch.tensor([0, 1, 3, 6])
    b = torch.tensor([5, 6, 4, 2])
    product = cyclic_representation(a, order, 3) @ cyclic_representation(b, order, 3)
    assert torch.allclose(product, cyclic_representation(a + b, order, 3), atol=1e-5)
    assert is_orthogonal(cyclic_representation(a, order, 3), atol=1e-5)


def test_cyclic_generator_has_order_n():
    order = 5
    generator = cyclic_representation(torch.tensor([1]), order, 2)[0].to(DOUBLE)
    identity = torch.eye(5, dtype=DOUBLE)
    full_turn = torch.linalg.matrix_power(generator, order)
    assert torch.allclose(full_turn, identity, atol=1e-6)
    assert not torch.allclose(torch.linalg.matrix_power(generator, 2), identity)


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_so3_generators_commutation_relations(degree):
    g_x, g_y, g_z = so3_generators(degree)
    assert torch.allclose(g_x @ g_y - g_y @ g_x, g_z, atol=1e-12)
    assert torch.allclose(g_y @ g_z - g_z @ g_y, g_x, atol=1e-12)
    assert torch.allclose(g_x + g_x.T, torch.zeros_like(g_x))


def test_so3_homomorphism():
    r1, r2 = random_rotations(6, 0), random_rotations(6, 1)
    product = so3_representation(r1, MAX_DEGREE) @ so3_representation(r2, MAX_DEGREE)
    assert torch.allclose(product, so3_representation(r1 @ r2, MAX_DEGREE), atol=1e-10)


def test_so3_transpose_gives_transpose():
    rotations = random_rotations(6, 2)
    transposed = so3_representation(rotations.transpose(-2, -1), MAX_DEGREE)
    expected = so3_representation(rotations, MAX_DEGREE).transpose(-2, -1)
    assert torch.allclose(transposed, expected, atol=1e-10)


def test_so3_orthogonal_and_identity():
    assert is_orthogonal(so3_representation(random_rotations(6, 3), MAX_DEGREE))
    identity = torch.eye(3, dtype=DOUBLE)[None]
    represented = so3_representation(identity, MAX_DEGREE)[0]
    assert torch.allclose(represented, torch.eye(25, dtype=DOUBLE), atol=1e-12)


def test_so3_degree1_block_is_permuted_rotation():
    rotations = random_rotations(8, 4)
    block = so3_representation(rotations, 1)[:, 1:4, 1:4]
    order = list(SO3_DEGREE1_BASIS)
    assert order == [1, 2, 0]
    assert torch.allclose(block, rotations[:, order][:, :, order], atol=1e-12)


def test_so3_half_turns_homomorphic():
    alpha = torch.tensor([0.4, 0.0, 1.0], dtype=DOUBLE)
    beta = torch.tensor([math.pi, math.pi, math.pi / 2], dtype=DOUBLE)
    gamma = torch.tensor([0.0, 0.0, -1.0], dtype=DOUBLE)
    half_turns = euler_zyz_to_matrix(alpha, beta, gamma)
    others = random_rotations(3, 5)
    product = so3_representation(half_turns, 3) @ so3_representation(others, 3)
    expected = so3_representation(half_turns @ others, 3)
    assert torch.allclose(product, expected, atol=1e-9)


def test_so3_euler_zyz_matches_generator_exponentials():
    alpha = torch.tensor([0.7, -2.0], dtype=DOUBLE)
    beta = torch.tensor([1.1, 0.2], dtype=DOUBLE)
    gamma = torch.tensor([2.5, 0.3], dtype=DOUBLE)
    g_x, g_y, g_z = so3_generators(2)

    def expm(angle, generator):
        return torch.linalg.matrix_exp(angle[:, None, None] * generator)

    expected = expm(alpha, g_z) @ expm(beta, g_y) @ expm(gamma, g_z)
    rotations = euler_zyz_to_matrix(alpha, beta, gamma)
    degree_two = so3_representation(rotations, 2)[:, 4:9, 4:9]
    assert torch.allclose(degree_two, expected, atol=1e-12)


def test_quaternion_matrix_round_trip():
    generator = torch.Generator().manual_seed(6)
    quaternions = torch.randn(50, 4, generator=generator, dtype=DOUBLE)
    quaternions = torch.nn.functional.normalize(quaternions, dim=-1)
    quaternions = torch.where(quaternions[:, :1] < 0, -quaternions, quaternions)
    recovered = matrix_to_quaternion(quaternion_to_matrix(quaternions))
    assert torch.allclose(recovered, quaternions, atol=1e-12)


def test_so3_quaternion_sign_irrelevant():
    generator = torch.Generator().manual_seed(7)
    quaternions = torch.randn(5, 4, generator=generator, dtype=DOUBLE)
    positive = so3_representation_from_quaternions(quaternions, 3)
    negative = so3_representation_from_quaternions(-quaternions, 3)
    assert torch.allclose(positive, negative, atol=1e-12)


def test_representation_dimensions():
    assert representation_dimension("so2", 8) == 17
    assert representation_dimension("cyclic", 3) == 7
    assert representation_dimension("so3", 8) == 81
    assert representation_dimension("so2_paired", 15) == 32


def test_representation_dimension_rejects_unknown_group():
    with pytest.raises(ValueError, match="unknown group"):
        representation_dimension("so4", 2)
