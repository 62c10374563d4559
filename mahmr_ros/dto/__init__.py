"""DTO: depth-conditioned translation optimisation (spec dto §3) and its per-frame variant DTO-Lite (§10)."""

from mahmr_ros.dto.priors import PersonPrior, age_class, height_prior
from mahmr_ros.dto.solve import GroupSolution, solve_group

__all__ = ["GroupSolution", "PersonPrior", "age_class", "height_prior", "solve_group"]
