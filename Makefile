# The two set-up commands of the README:
#   make serve   install the service (no torch) and start it on the shipped model
#   make test    install everything (training included) and run lint, types and tests
PYTHON ?= python3
SERVE_VENV := .venv-serve
DEV_VENV := .venv
HOST ?= 127.0.0.1
PORT ?= 8000


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

# The teacher of model 3.0 (musicnn on TensorFlow 2.15, numpy<2) in its own environment: only its
# export (training.teacher_export) runs there; its ONNX file runs in the training environment.
TEACHER_VENV := .venv-teacher
$(TEACHER_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(TEACHER_VENV)
	$(TEACHER_VENV)/bin/pip install -q -e ".[teacher]"
	$(TEACHER_VENV)/bin/pip install -q --no-deps musicnn==0.1.0
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

# Two workers (pytest-xdist): the servers, browsers and Ray tests wait much of their time. Each test
# file stays on one worker, so a module's expensive fixtures are built once. The slowest are listed.
pytest: $(DEV_VENV)/.installed $(TEACHER_VENV)/.installed browser
	GENRE_TEACHER_PYTHON=$(TEACHER_VENV)/bin/python $(DEV_VENV)/bin/python -m pytest -n 2 --dist loadfile --durations=25

# Model 2.1 is one network, trained with one thread (as shipped) on every labelled clip, and a
# summary head (training.clip_summary) fused into its file (docs/training.md, MODEL_CARD.md):
#   make cv      scores that recipe by artist-disjoint 5-fold cross-validation over train + valid,
#                two folds at a time (about 95 min), and writes $(CV_REPORT): the figures, the
#                calibration and the summary head's C and weight that export puts in the file and card
#   make train   trains the shipped network (about 26 min), exports it with $(CV_REPORT), attaches
#                the music detector to it (make detector) and exposes its embedding (make embedding)
# A run that was interrupted goes on from its last whole epoch when its target is made again (--resume).
TRAIN := $(DEV_VENV)/bin/python -m training.train --data ../shared/data/gtzan --threads 1 --resume
FOLDS := 0 1 2 3 4
CV_RUNS := $(addprefix runs/cv/fold,$(FOLDS))
CV_REPORT := training/inputs/cv.json
MODEL_VERSION := $(shell sed -n 's/^version = "\([^"]*\)".*/\1/p' pyproject.toml)

cv: $(DEV_VENV)/.installed
	$(MAKE) -j2 $(CV_RUNS)
	$(DEV_VENV)/bin/python -m training.cv --data ../shared/data/gtzan $(addprefix --run ,$(CV_RUNS)) --out $(CV_REPORT)

# A run's output goes to RUN.log: appended to when the run resumes (its earlier epochs stay), anew otherwise.
LOG = $(if $(wildcard $@/train_state.pt),>>,>) $@.log 2>&1
$(CV_RUNS): runs/cv/fold%: $(DEV_VENV)/.installed
	mkdir -p $(@D) && $(TRAIN) --cv-fold $* --out $@ $(LOG)

runs/final: $(DEV_VENV)/.installed
	mkdir -p $(@D) && $(TRAIN) --all-clips --out $@ $(LOG)

train: runs/final
	$(MAKE) export detector embedding

# The speed reference: model 1.2.0 (four networks), kept as a file in bench/reference/.
GENRE_MODEL := runs/genre/genre_birnn.onnx
export: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.export --run runs/final --cv $(CV_REPORT) --out $(GENRE_MODEL) \
		--version $(MODEL_VERSION) --speed-reference bench/reference/genre_birnn_1.2.0.onnx

# The music detector (training.detector): five heads on the frozen genre model's fused vector, trained on
# the corpus of training.corpus (Debian's speech, effects and soundtracks, about 1.2 GB, fetched once
# into $(CORPUS); as root it installs espeak-ng, flite and festival), attached to $(GENRE_MODEL) as the shipped
# file. Its windows are built once (about 20 min on 2 cores) into runs/detector/parts/, a part per source.
# GENRE_MODEL=model/genre_birnn.onnx gives the shipped file's genres a new detector (its old one cut away).
CORPUS := runs/corpus
DETECTED_MODEL := runs/detector/genre_birnn.onnx
detector: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.corpus fetch --cache $(CORPUS)
	$(DEV_VENV)/bin/python -m training.detector --genre-model $(GENRE_MODEL) --corpus $(CORPUS) \
		--out $(DETECTED_MODEL) --version $(MODEL_VERSION) --speed-reference bench/reference/genre_birnn_1.2.0.onnx

# The shipped file: the detected model with its fused vector as the `embedding` output (training.embedding).
embedding: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.embedding --model $(DETECTED_MODEL) --out model/genre_birnn.onnx \
		--version $(MODEL_VERSION)

# Model 3.0's teacher (training.teacher_export, training.teacher): musicnn's MSD and MTT taggers
# exported to ONNX (about 30 s); their targets for the GTZAN audio clips and the corpus's files
# (soundtracks, prompts, effects) cached in $(TEACHER)/targets; and the teacher's own figures on the
# audio clips (bench.teacher_ceiling), the ceiling on audio.
TEACHER := runs/teacher
TEACHERS := $(TEACHER)/MSD_musicnn.onnx $(TEACHER)/MTT_musicnn.onnx
$(TEACHERS) &: $(TEACHER_VENV)/.installed
	$(TEACHER_VENV)/bin/python -m training.teacher_export --model MSD_musicnn --model MTT_musicnn --out $(TEACHER)

teacher: $(TEACHERS) $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.corpus fetch --cache $(CORPUS)
	$(DEV_VENV)/bin/python -m training.teacher $(addprefix --teacher ,$(TEACHERS)) --cache $(TEACHER)/targets \
		--corpus $(CORPUS) ../shared/data/gtzan/audio
	$(DEV_VENV)/bin/python -m bench.teacher_ceiling $(addprefix --teacher ,$(TEACHERS)) --cache $(TEACHER)/targets \
		$(if $(wildcard $(DISTILLED)),--network distilled=$(DISTILLED)) \
		$(if $(wildcard $(TWO_TEACHERS_DISTILLED)),--network two-teachers=$(TWO_TEACHERS_DISTILLED))

# Model 3.0's recipe (docs/training.md): the network first learns the MSD teacher's view of the
# corpus's training soundtracks (training.distill, about 25 min with the teacher's targets), then the
# genres from the labelled clips, starting from those weights (training.train --init).
# `make cv-distilled` scores it as `make cv` scores today's recipe, into $(DISTILLED_CV_REPORT).
# The soundtracks are named, so that a run stays what its report measured as the corpus grows.
DISTILL_SOUNDTRACKS := wesnoth-music warzone2100-music ufoai-music hedgewars-music supertux-music \
	freedroidrpg-music extremetuxracer-music lincity-ng-music xmoto-music
ALL_SOUNDTRACKS := $(DISTILL_SOUNDTRACKS) hyperrogue-music planetblupi-music asc-music warmux-music
DISTILL := $(DEV_VENV)/bin/python -m training.distill --corpus $(CORPUS) --cache $(TEACHER)/targets
DISTILLED := runs/distill/checkpoint.pt
DISTILLED_CV_RUNS := $(addprefix runs/cv-distilled/fold,$(FOLDS))
DISTILLED_CV_REPORT := training/inputs/cv_distilled.json
$(DISTILLED): $(TEACHER)/MSD_musicnn.onnx $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.corpus fetch --cache $(CORPUS)
	$(DISTILL) --teachers $< --sources $(DISTILL_SOUNDTRACKS) --out $(@D) --threads 1 > $(@D).log 2>&1

$(DISTILLED_CV_RUNS): runs/cv-distilled/fold%: $(DISTILLED)
	mkdir -p $(@D) && $(TRAIN) --cv-fold $* --init $(DISTILLED) --out $@ $(LOG)

cv-distilled: $(DISTILLED)
	$(MAKE) -j2 $(DISTILLED_CV_RUNS)
	$(DEV_VENV)/bin/python -m training.cv --data ../shared/data/gtzan $(addprefix --run ,$(DISTILLED_CV_RUNS)) \
		--out $(DISTILLED_CV_REPORT)

# A smaller student for speed (docs/training.md): the network at about half of today's inference,
# distilled from the MSD teacher like the recipe above, then learning each fold's genres from the
# labels and from that fold's full-size network of `make cv-distilled` (--soft-targets-from).
# `make cv-student` scores it into $(STUDENT_CV_REPORT) (five runs of about 13 min, two at a time).
STUDENT_NETWORK := --network.hidden 48 --network.conv-channels 8 --network.frame-dim 64
STUDENT_DISTILLED := runs/distill-student/checkpoint.pt
STUDENT_CV_RUNS := $(addprefix runs/cv-student/fold,$(FOLDS))
STUDENT_CV_REPORT := training/inputs/cv_student.json
$(STUDENT_DISTILLED): $(TEACHER)/MSD_musicnn.onnx $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.corpus fetch --cache $(CORPUS)
	$(DISTILL) --teachers $< --sources $(ALL_SOUNDTRACKS) --out $(@D) --threads 2 $(STUDENT_NETWORK) > $(@D).log 2>&1

$(STUDENT_CV_RUNS): runs/cv-student/fold%: $(STUDENT_DISTILLED)
	test -f runs/cv-distilled/fold$*/checkpoint.pt || $(MAKE) runs/cv-distilled/fold$*
	mkdir -p $(@D) && $(TRAIN) --cv-fold $* --init $(STUDENT_DISTILLED) $(STUDENT_NETWORK) \
		--soft-targets-from runs/cv-distilled/fold$*/checkpoint.pt --out $@ $(LOG)

cv-student: $(STUDENT_DISTILLED)
	$(MAKE) -j2 $(STUDENT_CV_RUNS)
	$(DEV_VENV)/bin/python -m training.cv --data ../shared/data/gtzan $(addprefix --run ,$(STUDENT_CV_RUNS)) \
		--out $(STUDENT_CV_REPORT)

# Both of musicnn's taggers as one teacher (MSD's last.fm tags and MagnaTagATune's), the recipe of
# `make cv-distilled` otherwise: `make cv-two-teachers` scores it into $(TWO_TEACHERS_CV_REPORT).
TWO_TEACHERS_DISTILLED := runs/distill-two-teachers/checkpoint.pt
TWO_TEACHERS_CV_RUNS := $(addprefix runs/cv-two-teachers/fold,$(FOLDS))
TWO_TEACHERS_CV_REPORT := training/inputs/cv_two_teachers.json
$(TWO_TEACHERS_DISTILLED): $(TEACHERS) $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.corpus fetch --cache $(CORPUS)
	$(DISTILL) --teachers $(TEACHERS) --sources $(DISTILL_SOUNDTRACKS) --out $(@D) --threads 2 > $(@D).log 2>&1

$(TWO_TEACHERS_CV_RUNS): runs/cv-two-teachers/fold%: $(TWO_TEACHERS_DISTILLED)
	mkdir -p $(@D) && $(TRAIN) --cv-fold $* --init $(TWO_TEACHERS_DISTILLED) --out $@ $(LOG)

cv-two-teachers: $(TWO_TEACHERS_DISTILLED)
	$(MAKE) -j2 $(TWO_TEACHERS_CV_RUNS)
	$(DEV_VENV)/bin/python -m training.cv --data ../shared/data/gtzan $(addprefix --run ,$(TWO_TEACHERS_CV_RUNS)) \
		--out $(TWO_TEACHERS_CV_REPORT)

# The MSD teacher's genre tags as soft targets on soundtrack spans (training.tag_targets), beside
# the labels, from make cv-distilled's start: `make cv-tag-targets` scores it into $(TAG_TARGETS_CV_REPORT)
# (each run about 30 min of one core, about a fifth more than without the spans).
TAG_TARGETS_CV_RUNS := $(addprefix runs/cv-tag-targets/fold,$(FOLDS))
TAG_TARGETS_CV_REPORT := training/inputs/cv_tag_targets.json
$(TAG_TARGETS_CV_RUNS): runs/cv-tag-targets/fold%: $(DISTILLED)
	mkdir -p $(@D) && $(TRAIN) --cv-fold $* --init $(DISTILLED) --tag-targets.teacher $(TEACHER)/MSD_musicnn.onnx \
		--tag-targets.corpus $(CORPUS) --tag-targets.cache $(TEACHER)/targets \
		--tag-targets.sources $(ALL_SOUNDTRACKS) --out $@ $(LOG)

cv-tag-targets: $(DISTILLED)
	$(MAKE) -j2 $(TAG_TARGETS_CV_RUNS)
	$(DEV_VENV)/bin/python -m training.cv --data ../shared/data/gtzan $(addprefix --run ,$(TAG_TARGETS_CV_RUNS)) \
		--out $(TAG_TARGETS_CV_REPORT)

evaluate: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.evaluate --data ../shared/data/gtzan

bench: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m bench.pipeline
	$(DEV_VENV)/bin/python -m bench.load --clients 32 --seconds 60

# Similarity search (bench/similarity.py): its quality out of fold reads make cv's runs; its speed
# builds libraries of up to 10^6 tracks (about 20 min on 2 cores, 4 GB).
bench-similarity: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m bench.similarity quality $(addprefix --run ,$(CV_RUNS))
	$(DEV_VENV)/bin/python -m bench.similarity speed

docker-smoke:
	bash docker/smoke-test.sh

clean:
	rm -rf $(SERVE_VENV) $(DEV_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

.PHONY: serve test lint typecheck pytest browser cv $(CV_RUNS) runs/final train export detector embedding teacher cv-distilled $(DISTILLED_CV_RUNS) cv-student $(STUDENT_CV_RUNS) cv-two-teachers $(TWO_TEACHERS_CV_RUNS) \
	cv-tag-targets $(TAG_TARGETS_CV_RUNS) evaluate bench bench-similarity docker-smoke clean
