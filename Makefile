# The two set-up commands of the README:
#   make serve   install the service (no torch) and start it on the shipped model
#   make test    install everything (training included) and run lint, types and tests
PYTHON ?= python3
SERVE_VENV := .venv-serve
DEV_VENV := .venv
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint typecheck pytest browser cv cv-1.2.0 probes seeds distil distil-seed1 soundtracks pretrain cv-pretrained \
	train export evaluate bench docker-smoke clean

$(SERVE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/pip install -q -e .
	touch $@

# torch's CPU build. PyPI's Linux torch wheel pulls several GB of CUDA packages; PyTorch's CPU index
# has the CPU build, so pip looks there too, unless it finds a torch wheel without any index (a
# local wheelhouse in its find-links, as on this project's machines). TORCH_INDEX_URL= turns the
# index off; TORCH_INDEX_URL=<url> picks another (a mirror, or a CUDA build).
TORCH_VERSION := $(shell sed -n 's/.*"torch==\([^"]*\)".*/\1/p' pyproject.toml)
TORCH_INDEX_URL ?= $(shell $(PYTHON) -m pip install -q --dry-run --ignore-installed --no-deps --no-index \
	"torch==$(TORCH_VERSION)" >/dev/null 2>&1 || echo https://download.pytorch.org/whl/cpu)

# training/constraints.txt pins the other packages that built the shipped model, so that `make train`
# on a fresh install rebuilds it.
$(DEV_VENV)/.installed: pyproject.toml training/constraints.txt
	$(PYTHON) -m venv $(DEV_VENV)
	$(DEV_VENV)/bin/pip install -q $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL)) \
		-c training/constraints.txt -e ".[train,dev,ray]"
	touch $@

serve: $(SERVE_VENV)/.installed
	GENRE_HOST=$(HOST) GENRE_PORT=$(PORT) $(SERVE_VENV)/bin/python -m app.main

test: lint typecheck pytest

# The web page's test drives Debian's Chromium (no browser download); install it if missing.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		{ echo "install Debian's chromium (apt-get install chromium) for the web page test"; exit 1; }

lint: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/ruff check .
	$(DEV_VENV)/bin/ruff format --check .

typecheck: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/mypy

pytest: $(DEV_VENV)/.installed browser
	$(DEV_VENV)/bin/python -m pytest

# Model 2.1 is one network, trained with one thread (as shipped) on every labelled clip, and a
# summary head (training.clip_summary) fused into its file:
#   make cv      scores that recipe by artist-disjoint 5-fold cross-validation over train + valid,
#                two folds at a time (about 95 min), and writes $(CV_REPORT): the figures, the
#                calibration and the summary head's C and weight that export puts in the file and card
#                (make cv CV_REPORT=training/results/cv_rebuilt.json leaves the shipped model's report be)
#   make train   trains the shipped network (about 26 min) and exports it with $(CV_REPORT)
# A run that was interrupted goes on from its last whole epoch when its target is made again (--resume).
TRAIN := $(DEV_VENV)/bin/python -m training.train --data ../shared/data/gtzan --threads 1 --resume
FOLDS := 0 1 2 3 4
CV_RUNS := $(addprefix runs/cv/fold,$(FOLDS))
CV_REPORT := training/results/cv.json
MODEL_VERSION := 2.1.3

cv: $(DEV_VENV)/.installed
	$(MAKE) -j2 $(CV_RUNS)
	$(DEV_VENV)/bin/python -m training.cv --data ../shared/data/gtzan $(addprefix --run ,$(CV_RUNS)) --out $(CV_REPORT)

# Linear probes of feature ideas on the same folds, alone and fused with the CV runs' logits
# (training.probes, about 10 min): what a network with them might gain, before a CV is spent on it.
probes: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.probes --data ../shared/data/gtzan $(addprefix --run ,$(CV_RUNS)) \
		--out training/results/probes.json

# 1.2.0's recipe on the same folds, by its own code from git (training.past_release_cv; its four
# seeds, two runs at a time, about 4 h): the four-network release's accuracy, cross-validated as
# today's recipe is, for the one network that replaced it to be set against.
cv-1.2.0: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.past_release_cv --data ../shared/data/gtzan --commit 4c1052a --version 1.2.0 \
		--seed 0 --seed 1 --seed 2 --seed 3 --work runs/cv-1.2.0 --out training/results/cv_1.2.0.json

# The same cross-validation with seed 1 (about 80 min, all five folds at once), pooled with `make cv`'s
# runs (training.seed_ensemble): how far the CV figure moves with the seed, and what an ensemble of
# the two scores out of fold, the figure that distilling it into one network would aim at.
SEED1_RUNS := $(addprefix runs/cv-seed1/fold,$(FOLDS))
seeds: $(DEV_VENV)/.installed
	$(MAKE) -j5 $(SEED1_RUNS)
	$(DEV_VENV)/bin/python -m training.seed_ensemble --data ../shared/data/gtzan --cv runs/cv --cv runs/cv-seed1 \
		--out training/results/seed_ensemble.json

# The two seeds' ensemble distilled into one network (training.train --teacher), cross-validated
# (after make cv and make seeds; about 140 min, all five folds at once): each fold's student learns
# from that fold's two networks, which held out the same fold, half from the labels and half from
# the teachers' mean probability on the same augmented inputs; then the students against each seed
# and their ensemble, clip by clip (training.seed_ensemble --versus). `make distil-seed1` trains the
# same students with seed 1 (after make distil; as long again): the students' own seed spread.
DISTIL_RUNS := $(addprefix runs/cv-distil/fold,$(FOLDS))
DISTIL_SEED1_RUNS := $(addprefix runs/cv-distil-seed1/fold,$(FOLDS))
DISTIL_STUDENT = $(TRAIN) --cv-fold $* --teacher runs/cv/fold$* --teacher runs/cv-seed1/fold$* --distill 0.5
DISTIL_VERSUS = $(DEV_VENV)/bin/python -m training.seed_ensemble --data ../shared/data/gtzan --cv runs/cv \
	--cv runs/cv-seed1 --out training/results/distil_vs_seeds.json
distil: $(DEV_VENV)/.installed
	$(MAKE) -j5 $(DISTIL_RUNS)
	$(DEV_VENV)/bin/python -m training.cv --data ../shared/data/gtzan $(addprefix --run ,$(DISTIL_RUNS)) \
		--out training/results/distil_cv.json
	$(DISTIL_VERSUS) --versus runs/cv-distil
distil-seed1: $(DEV_VENV)/.installed
	$(MAKE) -j5 $(DISTIL_SEED1_RUNS)
	$(DISTIL_VERSUS) --versus runs/cv-distil --versus runs/cv-distil-seed1

# A wider network as the teacher to distil (the issue's last untried idea): the recipe with twice the
# GRU units and conv channels, cross-validated on the same folds (all five at once, over 2 h) into
# training/results/wide_cv.json: 0.644 fused, no better than the recipe, so no student was distilled.
WIDE_RUNS := $(addprefix runs/cv-wide/fold,$(FOLDS))
cv-wide: $(DEV_VENV)/.installed
	$(MAKE) -j5 $(WIDE_RUNS)
	$(DEV_VENV)/bin/python -m training.cv --data ../shared/data/gtzan $(addprefix --run ,$(WIDE_RUNS)) \
		--out training/results/wide_cv.json

# Self-supervised pretraining (training.pretrain) on Debian's game soundtracks: 12.2 h of unlabelled
# music under free licences once repeated files are skipped (none of it is committed).
#   make soundtracks    downloads and unpacks them into $(SOUNDTRACKS) (not hyperrogue-music, whose
#                       package is half sound effects)
#   make pretrain       pretrains the network on them (two threads, about 20 min) and probes its fused
#                       vector on the recipe's folds (training.probes without runs, about 1 min)
#   make cv-pretrained  cross-validates the recipe starting from those weights (training.train
#                       --init), as make cv does the recipe (about 95 min)
#   make cv-pretrained-seed1  after make cv-pretrained: the same with seed 1 (about 70 min, all five
#                       folds at once), pooled with its runs as make seeds pools the recipe's
SOUNDTRACK_PACKAGES := ufoai-music warzone2100-music wesnoth-1.16-music nexuiz-music singularity-music \
	asc-music drascula-music planetblupi-music-ogg fb-music-high
SOUNDTRACKS := runs/soundtracks
PRETRAINED := runs/pretrain/pretrained.pt
PRETRAINED_RUNS := $(addprefix runs/cv-pretrained/fold,$(FOLDS))
PRETRAINED_SEED1_RUNS := $(addprefix runs/cv-pretrained-seed1/fold,$(FOLDS))
soundtracks: $(SOUNDTRACKS)
$(SOUNDTRACKS):
	rm -rf $@.partial && mkdir -p $@.partial/debs
	cd $@.partial/debs && apt-get download $(SOUNDTRACK_PACKAGES)
	for deb in $@.partial/debs/*.deb; do dpkg-deb -x $$deb $@.partial/music; done
	find $@.partial/music -name '*.pk3' -exec sh -c '$(PYTHON) -m zipfile -e "$$1" "$${1%.pk3}"' _ {} \;
	mv $@.partial/music $@ && rm -rf $@.partial
pretrain: $(PRETRAINED)
	$(DEV_VENV)/bin/python -m training.probes --data ../shared/data/gtzan --encoder $(PRETRAINED) \
		--out training/results/pretrained_probes.json
$(PRETRAINED): $(SOUNDTRACKS) | $(DEV_VENV)/.installed
	mkdir -p $(@D) && $(DEV_VENV)/bin/python -m training.pretrain --music $(SOUNDTRACKS) --out $(@D) --threads 2 \
		> $(@D).log 2>&1
cv-pretrained: $(PRETRAINED) | $(DEV_VENV)/.installed
	$(MAKE) -j2 $(PRETRAINED_RUNS)
	$(DEV_VENV)/bin/python -m training.cv --data ../shared/data/gtzan $(addprefix --run ,$(PRETRAINED_RUNS)) \
		--out training/results/pretrained_cv.json
cv-pretrained-seed1: $(PRETRAINED) | $(DEV_VENV)/.installed
	$(MAKE) -j5 $(PRETRAINED_SEED1_RUNS)
	$(DEV_VENV)/bin/python -m training.seed_ensemble --data ../shared/data/gtzan --cv runs/cv-pretrained \
		--cv runs/cv-pretrained-seed1 --out training/results/pretrained_seeds.json

.PHONY: $(CV_RUNS) $(SEED1_RUNS) $(DISTIL_RUNS) $(DISTIL_SEED1_RUNS) $(PRETRAINED_RUNS) $(PRETRAINED_SEED1_RUNS) $(WIDE_RUNS) runs/final
# A run's output goes to RUN.log: appended to when the run resumes (its earlier epochs stay), anew otherwise.
LOG = $(if $(wildcard $@/train_state.pt),>>,>) $@.log 2>&1
$(CV_RUNS): runs/cv/fold%: $(DEV_VENV)/.installed
	mkdir -p $(@D) && $(TRAIN) --cv-fold $* --out $@ $(LOG)
$(SEED1_RUNS): runs/cv-seed1/fold%: $(DEV_VENV)/.installed
	mkdir -p $(@D) && $(TRAIN) --cv-fold $* --seed 1 --out $@ $(LOG)
$(DISTIL_RUNS): runs/cv-distil/fold%: $(DEV_VENV)/.installed
	mkdir -p $(@D) && $(DISTIL_STUDENT) --out $@ $(LOG)
$(DISTIL_SEED1_RUNS): runs/cv-distil-seed1/fold%: $(DEV_VENV)/.installed
	mkdir -p $(@D) && $(DISTIL_STUDENT) --seed 1 --out $@ $(LOG)
$(PRETRAINED_RUNS): runs/cv-pretrained/fold%: $(DEV_VENV)/.installed
	mkdir -p $(@D) && $(TRAIN) --cv-fold $* --init $(PRETRAINED) --out $@ $(LOG)
$(PRETRAINED_SEED1_RUNS): runs/cv-pretrained-seed1/fold%: $(DEV_VENV)/.installed
	mkdir -p $(@D) && $(TRAIN) --cv-fold $* --init $(PRETRAINED) --seed 1 --out $@ $(LOG)
$(WIDE_RUNS): runs/cv-wide/fold%: $(DEV_VENV)/.installed
	mkdir -p $(@D) && $(TRAIN) --cv-fold $* --network.hidden 192 --network.conv-channels 32 --out $@ $(LOG)

runs/final: $(DEV_VENV)/.installed
	mkdir -p $(@D) && $(TRAIN) --all-clips --out $@ $(LOG)

train: runs/final
	$(MAKE) export

# The speed reference: model 1.2.0 (four networks), as its ONNX file and card stand in git history.
REFERENCE := runs/model-1.2.0/genre_birnn.onnx
export: $(DEV_VENV)/.installed
	mkdir -p $(dir $(REFERENCE))
	git show a42b2a1:model/genre_birnn.onnx > $(REFERENCE)
	git show a42b2a1:model/genre_birnn.json > $(REFERENCE:.onnx=.json)
	$(DEV_VENV)/bin/python -m training.export --run runs/final --cv $(CV_REPORT) --out model/genre_birnn.onnx \
		--version $(MODEL_VERSION) --speed-reference $(REFERENCE)

evaluate: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.evaluate --data ../shared/data/gtzan

bench: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m bench.pipeline
	$(DEV_VENV)/bin/python -m bench.load --clients 32 --seconds 60

docker-smoke:
	bash docker/smoke-test.sh

clean:
	rm -rf $(SERVE_VENV) $(DEV_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
