"""The publishing machinery: building, checking and reporting the book, and measuring its speed.

Nothing here is part of the paper's method, and no module of the method imports from here (the
command line and the profile's `bench` settings do). `book` executes the chapter notebooks with
papermill and renders them with Jupyter Book (`python -m fmsnb.publish.book`, what `make book`
runs; it is also the Sphinx extension of _config.yml); `browsercheck` opens every built page in
headless Chromium and lists what is broken; `report` writes each chapter's metrics JSON and its
reproducibility footer, and publishes a long run's numbers to `book/results/`; `bench` measures
training and sampling speed against MDM's way of working, `devicecheck` a device's speed and a
profile's extrapolated wall time, and `performance` turns both, with chapter wall times and FLOP
counts, into the performance chapter's tables and cost estimates; `listing` shows the package's
own code on a chapter's page and `hyperparameters` a run's training settings beside the paper's;
`compare` sets two builds' metrics side by side, key by key.
"""
