"""The stand-ins: procedural data in the real releases' on-disk formats, for where those cannot go.

HumanML3D and the FMS dataset cannot be redistributed, so the `smoke`, `default` and `long`
profiles run on corpora generated here, and the `rehearsal` profile on a whole fake data root;
the method's readers (`fmsnb.humanml3d`, `fmsnb.dataset`, `fmsnb.fms`, `fmsnb.text`,
`fmsnb.t2m_evaluator`, `fmsnb.mdm_release`) read them exactly as they read the real files, and
nothing outside `fmsnb.corpora` and the tests needs this folder. `body` is one parametric human
body that both corpora animate; `actions` is the HumanML3D stand-in (everyday actions, captioned
from templates); `fms_moves` choreographs the 15 FMS movements at a requested grade and
`fms_recorder` records them with two simulated Azure Kinects into the published JSON format; and
`rehearsal` writes every file the `full` profile reads (HumanML3D, FMS, CLIP, the T2M evaluator,
GloVe, MDM's release), small and with random weights. None of their numbers says anything about
the paper's claims.
"""
