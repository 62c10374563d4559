"""The Anny body model as the offline estimator uses it: a fast keypoint path for fitting, the full
mesh.

Anny (``anny`` 0.6.2, code Apache-2.0, MakeHuman data CC0) is metric, Z-up, and spans infants to
elders through its ``age`` phenotype. We fit ``age`` and ``height`` (the other phenotypes stay at
their 0.5 defaults: gender, weight, muscle and proportions are not identifiable from sparse
keypoints), the body's global rotation and a few major bones (:data:`FIT_BONES`).

Fast path: COCO keypoints are a fixed linear regression of the skinned vertices, and linear blend
skinning is linear in the rest vertices, so each keypoint is ``sum_b R_b M_kb + S_kb t_b`` over the
bone transforms ``(R_b, t_b)``, with ``M_kb = sum_v W_kv w_vb rest_v`` and ``S_kb = sum_v W_kv
w_vb``. The rest state is piecewise linear in the phenotypes; we tabulate ``M`` and the rest bone
poses on an (age, height) grid once and interpolate, so a fit iteration costs one forward
kinematics pass instead of skinning 13,718 vertices.

Anny's model frame (``_anny``): x = the body's left, y = backwards (the face looks along -y), z =
up, metres, origin near the pelvis. ``R_cam_anny`` rotates model coordinates into the camera frame.
"""

from __future__ import annotations

import numpy as np
import roma
import torch

from mahmr_ros.geometry import axis_angle_to_rotmat
from mahmr_ros.offline.assets import load_anny_model

#: Bones whose local rotation is fitted (local-ref axis-angle); all others keep the rest pose.
FIT_BONES = (
    "spine04",
    "spine02",
    "neck02",
    "upperarm01.L",
    "upperarm01.R",
    "lowerarm01.L",
    "lowerarm01.R",
    "upperleg01.L",
    "upperleg01.R",
    "lowerleg01.L",
    "lowerleg01.R",
)
#: A relaxed standing pose (local-ref axis-angle, radians, per FIT_BONES name; others zero): arms
#: down with a slight elbow bend, legs straight. The fit's pose prior pulls towards it, so limbs
#: nobody sees stand.
STANDING_POSE = {
    "upperarm01.L": (0.0, 0.85, 0.0),
    "upperarm01.R": (0.0, -0.85, 0.0),
    "lowerarm01.L": (0.0, 0.0, 0.25),
    "lowerarm01.R": (0.0, 0.0, -0.25),
    "upperleg01.L": (0.0, 0.08, 0.0),
    "upperleg01.R": (0.0, -0.08, 0.0),
}
#: Anny COCO keypoint labels regressed by ``anny.KeypointsRegressor.coco`` (K = 23), in output
#: order.
KEYPOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle", "left_big_toe", "right_big_toe", "left_small_toe",
    "right_small_toe", "left_heel", "right_heel",
)  # fmt: skip
#: ``HumanEstimate.joints`` order for Anny: the mid-hip pelvis, then the 23 keypoints (J = 24).
JOINT_NAMES = ("pelvis",) + KEYPOINT_NAMES
#: Columns are the REP-155 body axes (x forward, y left, z up) written in Anny's model frame, so
#: the body orientation in the camera frame is ``R_cam_anny @ ANNY_TO_REP155``.
ANNY_TO_REP155 = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
#: Anny ``age`` phenotype anchors (newborn, baby, child, young, old at -1/3, 0, 1/3, 2/3, 1) and
#: the ages in years we read them as (MakeHuman's targets: baby 1 y, child 11 y, young 25 y, old 90
#: y). An approximation used only to pick the DTO height-prior class.
AGE_ANCHORS = np.array([-1 / 3, 0.0, 1 / 3, 2 / 3, 1.0])
AGE_ANCHOR_YEARS = np.array([0.0, 1.0, 11.0, 25.0, 90.0])


def standing_aa() -> np.ndarray:
    """(len(FIT_BONES), 3) local axis-angle of :data:`STANDING_POSE`, radians."""
    aa = np.zeros((len(FIT_BONES), 3))
    for name, value in STANDING_POSE.items():
        aa[FIT_BONES.index(name)] = value
    return aa


def age_years(age: np.ndarray | float) -> np.ndarray:
    """Anny ``age`` phenotype value(s) -> approximate age in years (piecewise linear, see
    AGE_ANCHORS)."""
    return np.interp(np.asarray(age, dtype=np.float64), AGE_ANCHORS, AGE_ANCHOR_YEARS)


class AnnyBody:
    """Anny model + COCO keypoint regressor + the tabulated fast keypoint path.

    The fitted phenotypes are ``age`` and ``height`` (both in [0, 1]); the others stay at 0.5. The
    tables are built on an ``age_grid_size`` x ``height_grid_size`` grid and interpolated
    bilinearly. With the defaults (49 x 3) every Anny anchor (age 0, 1/3, 2/3, 1; height 0, 1) is a
    grid node, so the rest vertices, which are piecewise linear in the phenotypes between anchors,
    are interpolated almost exactly.

    Args:
        age_grid_size: number of tabulated ``age`` values in [0, 1].
        height_grid_size: number of tabulated ``height`` phenotype values in [0, 1].
        model: an already-loaded ``anny.Anny`` (tests); default: the cached compact model
            (:func:`~mahmr_ros.offline.assets.load_anny_model`, raises ``AssetError`` if not
            built).
    """

    def __init__(self, age_grid_size: int = 49, height_grid_size: int = 3, model=None):
        import anny

        if age_grid_size < 2 or height_grid_size < 2:
            raise ValueError(
                f"[offline] grid sizes must be >= 2, got {age_grid_size}, {height_grid_size}"
            )
        self.model = model if model is not None else load_anny_model()
        self.dtype = self.model.dtype
        self.regressor = anny.KeypointsRegressor.coco(self.model, labels=list(KEYPOINT_NAMES))
        self.faces = self.model.get_triangular_faces().cpu().numpy().astype(np.uint32)  # (F, 3)
        self.num_vertices = int(self.model.template_vertices.shape[0])
        labels = list(self.model.bone_labels)
        missing = [b for b in FIT_BONES if b not in labels]
        if missing:
            raise ValueError(
                f"[offline] Anny rig lacks bones {missing}; rebuild the cache with anny 0.6.2"
            )
        self.bone_count = len(labels)
        self.fit_bone_ids = torch.tensor([labels.index(b) for b in FIT_BONES])
        self.phenotype_labels = list(self.model.phenotype_labels)
        for needed in ("age", "height"):
            if needed not in self.phenotype_labels:
                raise ValueError(
                    f"[offline] Anny model lacks the '{needed}' phenotype: {self.phenotype_labels}"
                )
        self._build_keypoint_basis(age_grid_size, height_grid_size)
        self._build_rest_nodes()

    # ---- phenotype ------------------------------------------------------------------------------
    def phenotypes(self, age: torch.Tensor, height: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) age and height phenotypes in [0, 1] -> (B, 6) phenotype vector (others 0.5), model
        dtype."""
        ph = torch.full((age.shape[0], len(self.phenotype_labels)), 0.5, dtype=self.dtype)
        ph[:, self.phenotype_labels.index("age")] = age.to(self.dtype)
        if height is not None:
            ph[:, self.phenotype_labels.index("height")] = height.to(self.dtype)
        return ph

    def _rest(self, age: torch.Tensor, height: torch.Tensor) -> dict[str, torch.Tensor]:
        model = self.model
        empty = torch.zeros(age.shape[0], 0, dtype=self.dtype)
        coeffs = model._get_phenotype_blendshape_coefficients(
            self.phenotypes(age, height), empty, empty
        )
        return model.get_rest_model(coeffs)

    def _build_rest_nodes(self) -> None:
        """Tabulate the blendshape-linear parts of Anny's rest model at its (age, height) anchor
        nodes.

        Anny's phenotype blendshape coefficients are products of per-phenotype linear weights
        between anchors; with gender, muscle, weight and proportions fixed they are bilinear in
        (age, height) inside each cell of the age anchors (0, 1/3, 2/3, 1 within [0, 1]) x height
        anchors (0, 1). Every quantity linear in the coefficients (rest vertices, rest bone heads,
        the bone-orientation cross-covariances of Anny's 'cached' orientation mode) is therefore
        *exactly* the bilinear interpolation of its values at those 4 x 2 nodes: the mesh forward
        reads 4 node tables instead of summing 136 blendshapes of 13,718 vertices (3 people: ~10 ->
        ~3 ms). Anny's own Procrustes then gives the rest bone orientations as it would. The
        identity is checked here on off-node phenotypes; a model where it does not hold (other
        anchors, another orientation mode) keeps Anny's exact path.
        """
        model = self.model
        self._rest_nodes = None
        if model.bone_orientation != "cached" or model.rest_orientation_refiner is not None:
            return
        anchors = {}
        for label in ("age", "height"):
            a = model.anchors[label].to(self.dtype)
            a = a[(a >= 0) & (a <= 1)]
            # _interp needs a uniform grid that starts at 0 and ends at 1
            if len(a) < 2 or not torch.allclose(
                a, torch.linspace(0.0, 1.0, len(a), dtype=self.dtype)
            ):
                return
            anchors[label] = a
        ga, gh = torch.meshgrid(anchors["age"], anchors["height"], indexing="ij")
        grid = ga.shape

        def coefficients(age: torch.Tensor, height: torch.Tensor) -> torch.Tensor:
            empty = torch.zeros(age.shape[0], 0, dtype=self.dtype)
            return model._get_phenotype_blendshape_coefficients(
                self.phenotypes(age, height), empty, empty
            )

        with torch.no_grad():
            c_nodes = coefficients(ga.reshape(-1), gh.reshape(-1))  # (G, C)
            probe = (
                torch.tensor([0.1, 0.45, 0.8], dtype=self.dtype),
                torch.tensor([0.3, 0.5, 0.9], dtype=self.dtype),
            )
            interp = self._interp(c_nodes.reshape(*grid, -1), *probe)
            if (interp - coefficients(*probe)).abs().max() > 1e-9:
                return
            verts = model.get_rest_vertices(c_nodes)  # (G, V, 3)
            heads = model.template_bone_heads[None] + torch.einsum(
                "cbd,gc->gbd", model.bone_heads_blendshapes, c_nodes
            )  # (G, Nb, 3)
            cross = model.bone_template_orientation_matrices[None] + torch.einsum(
                "ga,akij->gkij", c_nodes, model.bone_orientation_blendshapes
            )  # (G, Nb, 3, 3)
        parts = (verts, heads, cross)
        self._rest_node_shapes = [t.shape[1:] for t in parts]
        self._rest_nodes = torch.cat([t.reshape(t.shape[0], -1) for t in parts], 1).reshape(
            *grid, -1
        )

    def rest_model(self, age: torch.Tensor, height: torch.Tensor) -> dict[str, torch.Tensor]:
        """Anny's rest model for (B,) age and height phenotypes (others 0.5), exact.

        Returns:
            dict with ``rest_vertices`` (B, V, 3) m, ``rest_bone_heads`` (B, Nb, 3) m and
            ``rest_bone_poses`` (B, Nb, 4, 4), Anny model frame; from the anchor-node tables of
            :meth:`_build_rest_nodes` when they apply, else Anny's own blendshape sums.
        """
        if self._rest_nodes is None:
            return self._rest(age, height)
        flat = self._interp(self._rest_nodes, age.to(self.dtype), height.to(self.dtype))
        sizes = [int(np.prod(shape)) for shape in self._rest_node_shapes]
        verts, heads, cross = (
            t.reshape(-1, *shape) for t, shape in zip(flat.split(sizes, 1), self._rest_node_shapes)
        )
        # as Anny's 'cached' mode: the orientation is the rotation nearest the interpolated
        # cross-covariance
        poses = roma.Rigid(
            linear=roma.special_procrustes(cross), translation=heads
        ).to_homogeneous()
        if self.model.root_identity_orientation:
            poses[:, 0, :3, :3] = torch.eye(3, dtype=self.dtype)
        return {"rest_vertices": verts, "rest_bone_heads": heads, "rest_bone_poses": poses}

    def _build_keypoint_basis(self, age_size: int, height_size: int) -> None:
        """Tabulate rest bone poses, ``M`` (keypoint x bone moments) and heights on the phenotype
        grid."""
        self.age_grid = torch.linspace(0.0, 1.0, age_size, dtype=self.dtype)
        self.height_ph_grid = torch.linspace(0.0, 1.0, height_size, dtype=self.dtype)
        W = self.regressor.regression_weights.to(self.dtype)  # (K, V) keypoint regression weights
        bone_w = torch.zeros(
            self.num_vertices, self.bone_count, dtype=self.dtype
        )  # (V, Nb) skin weights
        skin_w = self.model.vertex_bone_weights.to(self.dtype)
        bone_w.scatter_add_(1, self.model.vertex_bone_indices.long(), skin_w)
        used = torch.nonzero(W.abs().sum(0) > 0).squeeze(1)  # vertices any keypoint reads
        A = (
            W[:, used, None] * bone_w[used][None]
        )  # (K, Vu, Nb): weight of vertex v via bone b in keypoint k
        self.S = A.sum(1)  # (K, Nb)
        ga, gh = torch.meshgrid(self.age_grid, self.height_ph_grid, indexing="ij")  # (Ga, Gh)
        with torch.no_grad():
            rest = self._rest(ga.reshape(-1), gh.reshape(-1))
            # M[g, k, b] = sum_v A[k, v, b] * rest_v[g]   (Ga*Gh, K, Nb, 3)
            M = torch.einsum("kvb,gvc->gkbc", A, rest["rest_vertices"][:, used])
            self.M_grid = M.reshape(age_size, height_size, *M.shape[1:])
            poses = rest["rest_bone_poses"]
            self.rest_bone_poses_grid = poses.reshape(age_size, height_size, *poses.shape[1:])
            z = rest["rest_vertices"][..., 2]
            # (Ga, Gh) T-pose height (Anny's definition: z extent of the rest mesh)
            self.height_grid_m = (z.max(1).values - z.min(1).values).reshape(age_size, height_size)
            # (Ga, Gh, K) height of each rest keypoint above the soles (the lowest rest vertex): a
            # heel keypoint sits inside the foot, this far above the floor the person stands on
            kp_z = rest["rest_vertices"][:, used, 2] @ W[:, used].T  # (G, K)
            self.keypoint_lift_grid_m = (kp_z - z.min(1).values[:, None]).reshape(
                age_size, height_size, -1
            )
            self._build_reduced_chain(poses, M, (age_size, height_size))

    def _build_reduced_chain(
        self, rest_poses: torch.Tensor, M: torch.Tensor, grid: tuple[int, int]
    ) -> None:
        """Tabulate the fitted-bones-only kinematic chain (see :meth:`keypoints_fast`).

        Anny's 'local-ref' chain poses a bone as ``W_c = W_p L_c [D_c | 0] [U_c | 0]`` (parent
        pose, constant offset, delta rotation, reference orientation). Every bone we do not fit
        keeps ``D = I``, so:

        * a fitted bone g with nearest fitted ancestor a: ``W_g = W_a E_g [D_g U_g | 0]`` with the
          constant ``E_g = W0_a^-1 W0_g [U_g | 0]^-1`` (``W0`` = poses at zero deltas; ``W_a = I``
          without ancestor);
        * any bone c whose nearest fitted ancestor-or-self is g moves rigidly with it:
          ``T_c = W_g W0_g^-1 T0_c``, so keypoint k is ``sum_g W_g N_kg + const_k`` with
          ``N_kg = W0_g^-1 sum_{c in g} T0_c (M_kc, S_kc)`` and ``const_k`` from bones with no
          fitted ancestor (they do not move: the global rotation is applied outside).

        So a fit evaluation chains 11 bones instead of Anny's 104 (17 levels); tables are per grid
        node.
        """
        G = rest_poses.shape[0]
        dt = self.dtype
        parents = [int(p) if p is not None else -1 for p in self.model.bone_parents]
        fit_ids = self.fit_bone_ids.tolist()
        fit_set = set(fit_ids)

        def nearest_fitted(c: int, include_self: bool) -> int:
            c = c if include_self else parents[c]
            while c >= 0 and c not in fit_set:
                c = parents[c] if c != parents[c] else -1
            return c

        group = [nearest_fitted(c, True) for c in range(self.bone_count)]
        self._chain_parent = [
            fit_ids.index(a) if a >= 0 else -1 for a in (nearest_fitted(g, False) for g in fit_ids)
        ]
        # evaluation order: ancestors first (a fitted bone's ancestors sit earlier in this list)
        depth = []
        for i in range(len(fit_ids)):
            d, j = 0, i
            while self._chain_parent[j] >= 0:
                d, j = d + 1, self._chain_parent[j]
            depth.append(d)
        self._chain_order = sorted(range(len(fit_ids)), key=lambda i: depth[i])
        eye = torch.eye(4, dtype=dt).expand(G, self.bone_count, 4, 4)
        T0, W0 = self.model.get_bone_transforms(eye, rest_poses)  # (G, Nb, 4, 4) each
        ref = self.model.reference_bone_orientations
        U = (ref.to(dt).expand(G, -1, -1, -1) if ref is not None else rest_poses[..., :3, :3])[
            :, fit_ids
        ]
        F_inv = torch.zeros(G, len(fit_ids), 4, 4, dtype=dt)
        F_inv[..., :3, :3] = U.transpose(-1, -2)
        F_inv[..., 3, 3] = 1.0
        W0_fit = W0[:, fit_ids]  # (G, Nf, 4, 4)
        W0_anc = torch.stack(
            [
                W0_fit[:, a] if a >= 0 else torch.eye(4, dtype=dt).expand(G, 4, 4)
                for a in self._chain_parent
            ],
            1,
        )
        E = torch.linalg.inv(W0_anc) @ W0_fit @ F_inv  # (G, Nf, 4, 4)
        # per-bone keypoint moments moved to their zero-pose place: T0_c (M_kc, S_kc) -> (G, K,
        # Nb, 3)
        moved = torch.einsum("gnij,gknj->gkni", T0[..., :3, :3], M) + torch.einsum(
            "kn,gni->gkni", self.S, T0[..., :3, 3]
        )
        gid = torch.tensor(group)
        N = torch.zeros(G, M.shape[1], len(fit_ids), 4, dtype=dt)
        const = moved[:, :, gid < 0].sum(2)  # (G, K, 3)
        W0_fit_inv = torch.linalg.inv(W0_fit)
        for i, g in enumerate(fit_ids):
            members = gid == g
            h = torch.cat(
                [moved[:, :, members].sum(2), self.S[:, members].sum(1).expand(G, -1)[..., None]],
                -1,
            )
            N[:, :, i] = torch.einsum("gij,gkj->gki", W0_fit_inv[:, i], h)
        # one flat table, so a fit evaluation interpolates once (small-op overhead dominates on
        # CPU)
        parts = (E, U, N, const)
        self._chain_shapes = [t.shape[1:] for t in parts]
        self._chain_grid = torch.cat([t.reshape(G, -1) for t in parts], 1).reshape(*grid, -1)

    @staticmethod
    def _interp(table: torch.Tensor, age: torch.Tensor, height: torch.Tensor) -> torch.Tensor:
        """Bilinear interpolation of ``table`` (Ga, Gh, ...) at (B,) phenotypes in [0, 1];
        differentiable."""
        Ga, Gh = table.shape[:2]
        extra = [1] * (table.dim() - 2)

        def cell(x: torch.Tensor, n: int):
            x = x.clamp(0.0, 1.0) * (n - 1)
            i0 = x.detach().floor().long().clamp(max=n - 2)
            return i0, (x - i0.to(x.dtype)).reshape(-1, *extra)

        ia, fa = cell(age, Ga)
        ih, fh = cell(height, Gh)
        low = table[ia, ih] * (1 - fh) + table[ia, ih + 1] * fh
        high = table[ia + 1, ih] * (1 - fh) + table[ia + 1, ih + 1] * fh
        return low * (1 - fa) + high * fa

    def height_m(self, age, height=None) -> np.ndarray:
        """(B,) age (and height, default 0.5) phenotypes -> (B,) T-pose height, metres
        (tabulated)."""
        age = torch.as_tensor(np.asarray(age, dtype=np.float64)).reshape(-1)
        height = np.full(age.shape, 0.5) if height is None else np.asarray(height, np.float64)
        height = torch.as_tensor(height)
        return self._interp(self.height_grid_m, age, height.reshape(-1)).numpy()

    def keypoint_lift_m(self, age, height) -> np.ndarray:
        """(B,) age and height phenotypes -> (B, K) rest-pose height of each keypoint above the
        soles, m."""
        age = torch.as_tensor(np.asarray(age, dtype=np.float64)).reshape(-1)
        height = torch.as_tensor(np.asarray(height, dtype=np.float64)).reshape(-1)
        return self._interp(self.keypoint_lift_grid_m, age, height).numpy()

    # ---- pose -----------------------------------------------------------------------------------
    def delta_transforms(self, bone_aa: torch.Tensor) -> torch.Tensor:
        """(B, len(FIT_BONES), 3) local axis-angle (rad) -> (B, Nb, 4, 4) Anny delta transforms."""
        B = bone_aa.shape[0]
        rot = axis_angle_to_rotmat(bone_aa.to(self.dtype))  # (B, Nf, 3, 3)
        rot_h = torch.nn.functional.pad(
            rot, (0, 1, 0, 1)
        )  # (B, Nf, 4, 4), homogeneous, no translation
        rot_h = rot_h + torch.nn.functional.pad(torch.ones(1, dtype=self.dtype), (3, 0)).diag()
        delta = torch.eye(4, dtype=self.dtype).repeat(B, self.bone_count, 1, 1)
        delta = delta.index_copy(
            1, self.fit_bone_ids, rot_h
        )  # out of place: keeps the autograd graph
        return delta

    def keypoints_fast(
        self, bone_aa: torch.Tensor, age: torch.Tensor, height: torch.Tensor
    ) -> torch.Tensor:
        """Model-frame keypoints through the tabulated reduced chain (differentiable in pose and
        phenotypes).

        Args:
            bone_aa: (B, len(FIT_BONES), 3) local axis-angle rotations, radians.
            age: (B,) Anny age phenotype in [0, 1].
            height: (B,) Anny height phenotype in [0, 1].

        Returns:
            (B, K=23, 3) keypoints, metres, Anny model frame (unrotated, untranslated).
        """
        flat = self._interp(self._chain_grid, age, height)  # (B, all tables)
        sizes = [int(np.prod(shape)) for shape in self._chain_shapes]
        E, U, N, kp = (
            t.reshape(-1, *shape) for t, shape in zip(flat.split(sizes, 1), self._chain_shapes)
        )  # (B, Nf, 4, 4), (B, Nf, 3, 3), (B, K, Nf, 4), (B, K, 3)
        D = (
            axis_angle_to_rotmat(bone_aa.to(self.dtype)) @ U
        )  # (B, Nf, 3, 3) delta in reference axes
        B = D.shape[0]
        local = torch.zeros(B, D.shape[1], 4, 4, dtype=self.dtype)
        local = local + torch.nn.functional.pad(torch.ones(1, dtype=self.dtype), (3, 0)).diag()
        local = local.clone()
        local[..., :3, :3] = D
        local = E @ local  # (B, Nf, 4, 4)
        W: list[torch.Tensor | None] = [None] * D.shape[1]
        for i in self._chain_order:
            a = self._chain_parent[i]
            W[i] = local[:, i] if a < 0 else W[a] @ local[:, i]
        Ws = torch.stack(W, 1)[..., :3, :]  # (B, Nf, 3, 4)
        return kp + torch.einsum("bnij,bknj->bki", Ws, N)

    def keypoints_fk(
        self, bone_aa: torch.Tensor, age: torch.Tensor, height: torch.Tensor
    ) -> torch.Tensor:
        """Same as :meth:`keypoints_fast` through Anny's full 104-bone chain (slower; a
        cross-check)."""
        rest_poses = self._interp(self.rest_bone_poses_grid, age, height)  # (B, Nb, 4, 4)
        M = self._interp(self.M_grid, age, height)  # (B, K, Nb, 3)
        transforms, _ = self.model.get_bone_transforms(self.delta_transforms(bone_aa), rest_poses)
        R, t = transforms[..., :3, :3], transforms[..., :3, 3]  # (B, Nb, 3, 3), (B, Nb, 3)
        # keypoint k = sum over bones b of R_b M_kb + S_kb t_b
        return torch.einsum("bnij,bknj->bki", R, M) + torch.einsum("kn,bni->bki", self.S, t)

    @torch.no_grad()
    def forward_full(
        self, bone_aa: torch.Tensor, age: torch.Tensor, height: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The exact Anny forward (all vertices) for the fitted parameters.

        Args:
            bone_aa: (B, len(FIT_BONES), 3) local axis-angle, radians.
            age: (B,) age phenotype in [0, 1].
            height: (B,) height phenotype in [0, 1]; None = 0.5.

        Returns:
            dict with ``vertices`` (B, V, 3), ``keypoints`` (B, 23, 3) and ``rest_vertices`` (B, V,
            3), metres, Anny model frame; ``height_m`` (B,) T-pose height (z extent of the rest
            mesh).
        """
        if height is None:
            height = torch.full_like(age, 0.5)
        rest = self.rest_model(age, height)
        # Anny's rigged forward (kinematics + linear blend skinning) on the tabulated rest model
        transforms, _ = self.model.get_bone_transforms(
            self.delta_transforms(bone_aa), rest["rest_bone_poses"]
        )
        vertices = self.model.get_skinned_vertices(rest["rest_vertices"], transforms)
        keypoints = self.regressor({"vertices": vertices})
        z = rest["rest_vertices"][..., 2]
        return {
            "vertices": vertices,
            "keypoints": keypoints,
            "rest_vertices": rest["rest_vertices"],
            "height_m": z.max(1).values - z.min(1).values,
        }


def joints_from_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """(..., 23, 3) keypoints -> (..., 24, 3) ``JOINT_NAMES`` joints (mid-hip pelvis prepended)."""
    pelvis = 0.5 * (keypoints[..., 11, :] + keypoints[..., 12, :])
    return np.concatenate([pelvis[..., None, :], keypoints], axis=-2)
