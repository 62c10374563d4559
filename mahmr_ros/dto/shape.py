"""SMPL(-A) shape quantities DTO needs: T-pose height h(beta), rest pelvis J0(beta), and the beta
update.

DTO changes one shape coefficient so that the body's metric height becomes s_i h_i (spec dto §3.5),
and places the new body so its pelvis sits exactly at s_i times its old position (spec dto §10.3
step 6). Both only need the zero-pose shaped template ``v_template + shapedirs . beta`` (linear in
beta), so this module works from the model arrays directly and never runs skinning:

* ``height(beta)``: max_y - min_y over all vertices of the zero-pose body (spec dto §4), metres,
  exact.
* ``rest_pelvis(beta)``: J0(beta) = J_regressor[0] . (v_template + shapedirs . beta), metres
  (linear in beta).

The shape update is SMPL-specific; other bodies (e.g. Anny) have no ``ShapeModel`` and DTO only
scales them along the ray (see ``mahmr_ros.dto.apply``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KID_HEIGHT_M = (
    1.45  # new height below which the kid blend is the coefficient to change (spec dto §3.5)
)
KID_INDEX = 10  # index of the kid-blend coefficient in SMPL-A betas
SECANT_STEPS = 3  # the official code takes one secant step; Newton steps make the new height exact


@dataclass
class ShapeModel:
    """Zero-pose SMPL(-A) shape space (canonical frame, y up, metres).

    Attributes:
        v_template: (V, 3) float64 mean template.
        shapedirs: (V, 3, S) float64 shape basis; S = 11 with the kid blend (SMPL-A), else 10.
        pelvis_weights: (V,) float64 row 0 of the joint regressor (the root / pelvis joint).
        faces: (F, 3) int64 triangle indices (for the z-buffer), or None.
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    pelvis_weights: np.ndarray
    faces: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.v_template = np.asarray(self.v_template, np.float64)
        self.shapedirs = np.asarray(self.shapedirs, np.float64)
        self.pelvis_weights = np.asarray(self.pelvis_weights, np.float64).reshape(-1)
        V = self.v_template.shape[0]
        if self.v_template.shape != (V, 3) or self.shapedirs.shape[:2] != (V, 3):
            raise ValueError(
                f"[dto.shape] v_template must be (V, 3) and shapedirs (V, 3, S); got "
                f"{self.v_template.shape} and {self.shapedirs.shape}"
            )
        if self.pelvis_weights.shape != (V,):
            raise ValueError(
                f"[dto.shape] pelvis regressor row has {self.pelvis_weights.shape[0]} entries, "
                f"V={V}"
            )
        if self.faces is not None:
            self.faces = np.asarray(self.faces, np.int64).reshape(-1, 3)
        # Heights only need the y coordinate; keep it contiguous for a fast (V, S) matvec.
        self._y0 = self.v_template[:, 1].copy()
        self._ydirs = np.ascontiguousarray(self.shapedirs[:, 1, :])

    @classmethod
    def from_arrays(cls, arrays: dict, kid_template: np.ndarray | None = None) -> ShapeModel:
        """Build from SMPL-format arrays (``v_template``, ``shapedirs``, ``J_regressor``, optional
        ``f``).

        Args:
            arrays: mapping with SMPL's array names (as in the model file /
                ``synthetic_smpl_arrays``).
            kid_template: optional (V, 3) child template; adds the SMPL-A kid blend as component S
                (``kid_template - mean(kid_template) - v_template``, spec dto §4, as smplx's kid
                mode and ``mahmr_ros.body.SMPLBody``). Defaults to ``arrays["kid_template"]`` when
                present.
        """
        missing = [k for k in ("v_template", "shapedirs", "J_regressor") if k not in arrays]
        if missing:
            raise ValueError(f"[dto.shape] SMPL arrays lack {missing}; have {sorted(arrays)}")
        v = np.asarray(arrays["v_template"], np.float64)
        dirs = np.asarray(arrays["shapedirs"], np.float64)[:, :, :10]
        kid = kid_template if kid_template is not None else arrays.get("kid_template")
        if kid is not None:
            kid = np.asarray(kid, np.float64)
            if kid.shape != v.shape:
                raise ValueError(f"[dto.shape] kid template is {kid.shape}, expected {v.shape}")
            blend = (kid - kid.mean(0)) - v
            dirs = np.concatenate([dirs, blend[:, :, None]], axis=2)
        J = arrays["J_regressor"]
        J = J.toarray() if hasattr(J, "toarray") else np.asarray(J)
        return cls(v, dirs, J[0], arrays.get("f"))

    @classmethod
    def from_smpl_body(cls, body) -> ShapeModel:
        """Build from a ``mahmr_ros.body.SMPLBody`` (its loaded arrays and optional kid
        template)."""
        return cls.from_arrays(body.arrays, kid_template=getattr(body, "kid_template", None))

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[2])

    def _pad(self, betas) -> np.ndarray:
        b = np.asarray(betas, np.float64).reshape(-1)
        if len(b) > self.num_betas:
            if np.any(b[self.num_betas :] != 0):
                raise ValueError(
                    f"[dto.shape] {len(b)} betas but the shape model has {self.num_betas} "
                    "components (no kid template?) and the extra ones are non-zero"
                )
            b = b[: self.num_betas]
        return np.pad(
            b, (0, self.num_betas - len(b))
        )  # 10-dim input -> kid blend 0 (spec dto §3.0)

    def height(self, betas) -> float:
        """Zero-pose height max_y - min_y of the shaped template, metres (spec dto §4)."""
        y = self._y0 + self._ydirs @ self._pad(betas)
        return float(y.max() - y.min())

    def _height_and_gradient(self, b: np.ndarray) -> tuple[float, np.ndarray]:
        """Height and its (S,) gradient in beta for padded betas (extreme vertices held fixed)."""
        y = self._y0 + self._ydirs @ b
        top, bottom = int(np.argmax(y)), int(np.argmin(y))
        return float(y[top] - y[bottom]), self._ydirs[top] - self._ydirs[bottom]

    def shaped(self, betas) -> np.ndarray:
        """(V, 3) zero-pose vertices v_template + shapedirs . beta, canonical frame, metres."""
        return self.v_template + self.shapedirs @ self._pad(betas)

    def rest_pelvis(self, betas) -> np.ndarray:
        """(3,) J0(beta), the rest root joint, canonical frame, metres (linear in beta)."""
        return self.pelvis_weights @ self.shaped(betas)

    def choose_index(self, new_height_m: float, scale: float, age_class: int | None) -> int:
        """Coefficient to change (spec dto §3.5): kid blend for a shrunk child or a short result,
        else 0."""
        if self.num_betas <= KID_INDEX:
            return 0
        child = age_class is not None and age_class in (0, 1, 2)
        return KID_INDEX if (child and scale < 1.0) or new_height_m < KID_HEIGHT_M else 0

    def update_betas(
        self, betas, scale: float, age_class: int | None = None, steps: int = SECANT_STEPS
    ) -> tuple[np.ndarray, int]:
        """Betas whose height is ``scale`` times the current one (spec dto §3.5).

        ``steps == 1`` is the official backward-difference secant step
        ``beta_k += h (s - 1) / (h(beta) - h(beta - e_k))`` (the new height is then only
        approximate). With ``steps > 1`` Newton steps on the exact height are taken instead:
        h(beta) = y[top] - y[bottom] is linear in beta while the extreme vertices stay the same, so
        one step is usually exact (one (V, S) product per step, fast enough for per-frame use).

        Args:
            betas: (S,) or (10,) current coefficients.
            scale: s > 0, the DTO scale of this person.
            age_class: prior class 0..5 or None.
            steps: 1 = official secant step; more = Newton steps until the height is within 0.1 mm.

        Returns:
            (betas', k): (S,) float32 new betas and the changed index.
        """
        b = self._pad(betas)
        h, _ = self._height_and_gradient(b)
        target = scale * h
        k = self.choose_index(target, scale, age_class)
        if steps <= 1:
            e = np.zeros_like(b)
            e[k] = 1.0
            slope = h - self.height(b - e)
            if abs(slope) > 1e-9:  # a coefficient that does not change the height cannot be used
                b = b + e * (target - h) / slope
            return b.astype(np.float32), k
        for _ in range(steps):
            cur, grad = self._height_and_gradient(b)
            if abs(cur - target) < 1e-4 or abs(grad[k]) < 1e-9:
                break
            b[k] += (target - cur) / grad[k]
        return b.astype(np.float32), k
