"""fmsnb: the runnable companion of "Fitness Aware Human Motion Generation with Fine-Tuning".

The package holds every piece of computation the book's notebooks narrate: the HumanML3D motion
representation, the FMS data layer, the motion diffusion model, its training and sampling, and
the evaluation. Each module covers one concept and says so in its docstring. The flat modules
are the method and the run around it; the procedural stand-in corpora live in `fmsnb.standin`
and the book's publishing machinery in `fmsnb.publish` (README.md gives a reading order).
"""
__version__ = "0.1.0"
