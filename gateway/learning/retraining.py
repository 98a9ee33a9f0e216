"""One retraining run: reviewed data → new classifier and Rasa model → evaluation gate → hot swap.

    freeze the accepted examples as a training-data version
    build the tenant's Rasa project: the platform's skills + its settings + its language data + those
    examples (new intents included); the tenant's held-out set and conversation tests are kept beside
    rasa train (the classifier's probe trains inside it, seconds) → <models>/<tenant>/v<N>.tar.gz
    score candidate and production on the held-out sets and the conversation tests
    gate: promote only if no metric drops more than the tolerance
    promote: PUT /model on the running Rasa server(s), then mark the version production
    refine (``refine``): the same data once more with ``finetune: auto`` → v<N+1>, which is the
    fine-tuned model where it beat the probe on held-out data; through the same gate, not metered

Every step is written to the version's ``stage``; the outcome, metrics and gate land in the registry.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from gateway.billing.plans import Unit
from gateway.billing.usage_service import UsageService
from gateway.db.models import utcnow
from gateway.assistants.assistant_service import AssistantService
from gateway.assistants.assistant_store import AssistantError
from gateway.assistants.project_builder import AssistantProject, ReviewedExample
from gateway.assistants.templates import BOT_DIR
from gateway.errors import CodedError
from gateway.learning.evaluation_gate import EvaluationGate
from gateway.learning.model_deployer import DeploymentError, RasaModelDeployer, RasaUnreachableError
from gateway.learning.model_evaluator import EvaluationError, EvaluationSets, ModelEvaluator, read_model_id
from gateway.learning.model_registry import ModelRegistry, RegistryError, VersionView, file_sha256
from gateway.learning.review_inbox import ReviewInbox
from gateway.settings import PROJECT_ROOT, Settings
from gateway.rasa_cli import RASA_BIN, rasa_cli_env

logger = logging.getLogger(__name__)

#: Statuses a rollback may return to (a refused or failed model never goes live).
ROLLBACK_TARGETS = ("retired", "candidate", "production")


class RetrainingError(CodedError, RuntimeError):
    """A retraining, promotion or rollback that cannot be done; ``code`` is the API error code."""


class RetrainingPipeline:
    """Runs retraining, promotion and rollback for the tenants of one deployment.

    Args:
        settings: Paths, Rasa address and token, gate tolerance.
        sessions: Gateway database.
        deployer: Loads models into Rasa (the settings' Rasa server by default).
        evaluator: Scores archives on the held-out sets (by default each tenant's: the held-out examples of
            its intents and the conversation tests of its skills, kept from its last build).
        gate: Compares candidate and production.
        bot_dir: The skills' Rasa project tenants' projects are built from.
        progress: Called with a line per step (the CLI prints it).
    """

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], deployer: RasaModelDeployer | None = None,
                 evaluator: ModelEvaluator | None = None, gate: EvaluationGate | None = None,
                 bot_dir: Path = BOT_DIR, progress: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.registry = ModelRegistry(sessions, settings.model_registry_dir)
        self.deployer = deployer or RasaModelDeployer(settings.rasa_urls, settings.rasa_token.get_secret_value())
        self._evaluator = evaluator
        self.assistants = AssistantService(sessions, bot_dir)
        self.gate = gate or EvaluationGate(settings.gate_tolerance)
        self.bot_dir = bot_dir
        self.usage = UsageService(sessions)
        self.progress = progress or (lambda line: logger.info("%s", line))

    # ------------------------------------------------------------ retraining
    def start(self, tenant_id: str, actor: str) -> VersionView:
        """Check the plan, freeze the reviewed data and open a new version in status ``training``.

        The run is metered as a training run once its model is built (``run``).

        Raises:
            RetrainingError: The plan's training runs are used up, or a run is already going.
        """
        if not self.usage.may_use(tenant_id, Unit.TRAINING_RUNS):
            raise RetrainingError("quota_exceeded", "the plan's training runs for this period are used up")
        try:
            self.assistants.require(tenant_id)  # a tenant without an assistant has nothing to train
        except AssistantError as exc:
            raise RetrainingError(exc.code, exc.detail) from exc
        data = ReviewInbox(self.sessions).freeze(tenant_id, actor)
        try:
            version = self.registry.begin_retraining(tenant_id, actor, data["version"])
        except RegistryError as exc:
            raise RetrainingError(exc.code, exc.detail) from exc
        self.progress(f"v{version.version}: training data version {data['version']} "
                      f"({data['examples']} reviewed examples, intents {', '.join(data['intents']) or '-'})")
        return version

    def first_model(self, tenant_id: str, actor: str) -> VersionView:
        """Train a new tenant's first assistant and put it live: the same build, gate and registry as every
        run, not metered (it is part of signing up) and without reviewed examples (there are none yet).

        Raises:
            RetrainingError: The tenant has no assistant, or a run is already going.
        """
        try:
            self.assistants.require(tenant_id)
            version = self.registry.begin_retraining(tenant_id, actor, None, source="onboard")
        except (AssistantError, RegistryError) as exc:
            raise RetrainingError(exc.code, exc.detail) from exc
        self.progress(f"v{version.version}: {tenant_id}'s first assistant")
        return self.run(tenant_id, version.version, actor, promote=True, metered=False)

    def retrain(self, tenant_id: str, actor: str, promote: bool = True, refine: bool = False) -> VersionView:
        """``start`` then ``run`` (then ``refine`` when asked): the one command.

        Returns the probe-first version, or the refined one when a refinement ran.
        """
        return self.run_then_refine(tenant_id, self.start(tenant_id, actor).version, actor, promote, refine)

    def run_then_refine(self, tenant_id: str, version: int, actor: str, promote: bool = True,
                        refine: bool = False) -> VersionView:
        """``run`` a started version, then ``refine`` it when asked (and it passed).

        Returns the probe-first version, or the refined one when a refinement ran.
        """
        row = self.run(tenant_id, version, actor, promote)
        refined = self.refine(tenant_id, row, actor, promote) if refine else None
        return refined or row

    def run(self, tenant_id: str, version: int, actor: str, promote: bool = True,
            classifier_settings: dict[str, Any] | None = None, metered: bool = True) -> VersionView:
        """Train, evaluate, gate and (when it passes and ``promote``) put version ``version`` live.

        Never raises for a failed run: the version ends ``failed`` with the error stored.

        Args:
            classifier_settings: Classifier settings that replace the bot's for this run.
            metered: Count the run against the plan's training runs (a refinement is not).
        """
        try:
            return self._run(tenant_id, version, actor, promote, classifier_settings, metered)
        except Exception as exc:  # noqa: BLE001 - any failure ends the run, recorded, nothing promoted
            logger.exception("retraining v%s of %s failed", version, tenant_id)
            self.progress(f"v{version}: failed: {exc}")
            return self.registry.update(tenant_id, version, status="failed", stage=None, error=str(exc)[:4000],
                                        finished_at=utcnow())

    def refine(self, tenant_id: str, after: VersionView, actor: str, promote: bool = True,
               classifier_settings: dict[str, Any] | None = None) -> VersionView | None:
        """Fine-tune on the data of version ``after`` (a probe-first run) and gate the result.

        The fast model is already live; this one follows only when it passes the same gate against
        whatever is in production then. Returns None when ``after`` did not pass or another run is going.

        Args:
            classifier_settings: More classifier settings for this run (``finetune`` is ``auto``).
        """
        if after.status not in ("candidate", "production") or not (after.gate or {}).get("passed"):
            return None
        try:
            version = self.registry.begin_retraining(tenant_id, actor, after.data_version_id, source="refine")
        except RegistryError as exc:
            self.progress(f"refinement of v{after.version} not started: {exc.detail}")
            return None
        self.progress(f"v{version.version}: refining v{after.version} (fine-tuning, served only where it beats the probe)")
        return self.run(tenant_id, version.version, actor, promote,
                        classifier_settings={**(classifier_settings or {}), "finetune": "auto"}, metered=False)

    def _run(self, tenant_id: str, version: int, actor: str, promote: bool,
             classifier_settings: dict[str, Any] | None = None, metered: bool = True) -> VersionView:
        row = self.registry.get(tenant_id, version)
        examples = [] if row.data_version_id is None else ReviewInbox(self.sessions).version_examples(
            tenant_id, row.data_version_id)
        workdir = self.settings.training_dir / tenant_id / f"v{version}"
        self._stage(tenant_id, version, "building")
        project = self.assistants.build(tenant_id, workdir / "project",
                                        [ReviewedExample(text, intent) for text, intent in examples], classifier_settings)
        self._keep_evaluation_sets(tenant_id, project)
        self.progress(f"v{version}: project built (skills: {', '.join(project.skills) or '-'}; {project.reviewed} "
                      f"reviewed examples, {project.replaced} examples relabelled, new intents: "
                      f"{', '.join(project.new_intents) or '-'})")
        self.registry.update(tenant_id, version, bot_data_hash=project.project_hash, intents=project.intents)

        self._stage(tenant_id, version, "training")
        archive = self.registry.archive_path(tenant_id, version)
        try:
            self._rasa_train(project.config, project.domain, project.data, archive, workdir / "train.log")
        finally:
            # The generated project holds customers' (redacted) words; the database can rebuild it, and
            # erasure only has to reach the database: only the training log stays.
            shutil.rmtree(project.root, ignore_errors=True)
        self.registry.update(tenant_id, version, archive_path=str(archive), archive_sha256=file_sha256(archive),
                             rasa_model_id=read_model_id(archive))
        self.progress(f"v{version}: trained → {archive}")
        # Billed once the model exists (whatever the gate says later); a run that failed is not billed,
        # and a refinement belongs to the run it refines.
        if metered:
            self.usage.meter(tenant_id, Unit.TRAINING_RUNS, f"training:{tenant_id}:v{version}",
                             source={"model_version": version, "actor": actor[:100]})

        self._stage(tenant_id, version, "evaluating")
        metrics = self.evaluator(tenant_id).evaluate(archive)
        self.registry.update(tenant_id, version, metrics=metrics)
        self.progress(f"v{version}: {self._summary(metrics)}")

        self._stage(tenant_id, version, "comparing")
        production = self.production_with_metrics(tenant_id)
        decision = self.gate.decide(metrics, production.metrics if production else None,
                                    production.version if production else None)
        status = "candidate" if decision.passed else "refused"
        promoting = decision.passed and promote
        row = self.registry.update(tenant_id, version, gate=decision.to_json(), status=status,
                                   stage="promoting" if promoting else None, finished_at=utcnow())
        if not decision.passed:
            self.progress(f"v{version}: refused by the gate: " + "; ".join(decision.reasons))
            return row
        self.progress(f"v{version}: passed the gate against "
                      + (f"v{production.version}" if production else "no production model"))
        if promoting:
            try:
                row = self.promote(tenant_id, version, actor)
            except RetrainingError as exc:
                self.progress(f"v{version}: not promoted: {exc.detail}")
                row = self.registry.get(tenant_id, version)
        return row

    def evaluation_dir(self, tenant_id: str) -> Path:
        """Where the tenant's held-out set and conversation tests from its last build are kept."""
        return self.settings.training_dir / tenant_id / "evaluation"

    def _keep_evaluation_sets(self, tenant_id: str, project: AssistantProject) -> None:
        """Copy the build's held-out set and tests out of the project (which is deleted after training)."""
        target = self.evaluation_dir(tenant_id)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        shutil.copy2(project.holdout, target / "nlu_holdout.yml")
        if project.tests is not None:
            shutil.copytree(project.tests, target / "tests")

    def evaluator(self, tenant_id: str) -> ModelEvaluator:
        """The evaluator of the tenant's models (the one given to the pipeline, if any)."""
        if self._evaluator is not None:
            return self._evaluator
        folder = self.evaluation_dir(tenant_id)
        if not (folder / "nlu_holdout.yml").exists():
            return ModelEvaluator()
        tests = folder / "tests"
        return ModelEvaluator(EvaluationSets(nlu_holdout=folder / "nlu_holdout.yml",
                                             conversation_tests=tests if tests.is_dir() else None))

    def _stage(self, tenant_id: str, version: int, stage: str) -> None:
        self.registry.update(tenant_id, version, stage=stage)
        self.progress(f"v{version}: {stage}…")

    @staticmethod
    def _summary(metrics: dict[str, Any]) -> str:
        return (f"intent accuracy {metrics['intent_accuracy']:.4f}, macro F1 {metrics['intent_macro_f1']:.4f}, "
                f"out-of-scope recall {metrics['oos_recall']:.4f}, sentiment {metrics['sentiment_accuracy']:.4f}, "
                f"conversation tests {metrics.get('conversation_tests', 1.0):.4f}")

    def _rasa_train(self, config: Path, domain: Path, data: Path, archive: Path, log_path: Path) -> None:
        """``rasa train`` into ``archive`` (output to ``log_path``); Rasa's cache reuses unchanged parts."""
        archive.parent.mkdir(parents=True, exist_ok=True)
        env = rasa_cli_env()
        command = [str(RASA_BIN), "train", "--config", str(config), "--domain", str(domain), "--data", str(data),
                   "--out", str(archive.parent), "--fixed-model-name", archive.name.removesuffix(".tar.gz")]
        with log_path.open("wb") as log:
            result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        if result.returncode != 0 or not archive.exists():
            tail = log_path.read_text(errors="replace")[-1500:]
            raise RetrainingError("training_failed", f"rasa train failed (exit {result.returncode}): {tail}")

    def production_with_metrics(self, tenant_id: str) -> VersionView | None:
        """The production version, scored on the current held-out sets (scored now if it never was)."""
        production = self.registry.production(tenant_id)
        if production is None or not production.archive_path:
            return production
        evaluator = self.evaluator(tenant_id)
        fingerprint = evaluator.sets.fingerprint()
        if production.metrics and production.metrics.get("evaluation_sets") == fingerprint:
            return production
        self.progress(f"scoring production v{production.version} on the current held-out sets…")
        try:
            metrics = evaluator.evaluate(Path(production.archive_path))
        except EvaluationError as exc:
            raise RetrainingError("evaluation_failed", f"production v{production.version}: {exc}") from exc
        return self.registry.update(tenant_id, production.version, metrics=metrics)

    # --------------------------------------------------- promotion / rollback
    def promote(self, tenant_id: str, version: int, actor: str) -> VersionView:
        """Load a candidate that passed the gate into Rasa and mark it production.

        Raises:
            RetrainingError: Not a candidate that passed, or Rasa could not load it (the old model keeps serving).
        """
        row = self._registry_get(tenant_id, version)
        if row.status != "candidate" or not (row.gate or {}).get("passed"):
            raise RetrainingError("not_promotable", f"v{version} is {row.status}; only candidates that passed the gate "
                                  "are promoted")
        return self._go_live(row, actor, "promote")

    def rollback(self, tenant_id: str, actor: str, to_version: int | None = None) -> VersionView:
        """Put an earlier version back into production (the previous one when ``to_version`` is None).

        Raises:
            RetrainingError: Nothing to roll back to, a version that never passed, or Rasa could not load it.
        """
        if to_version is None:
            target = self.registry.previous_production(tenant_id)
            if target is None:
                raise RetrainingError("nothing_to_roll_back", "no earlier production version")
        else:
            target = self._registry_get(tenant_id, to_version)
        if target.status not in ROLLBACK_TARGETS or (target.source in ("retrain", "refine", "onboard") and not (target.gate or {}).get("passed")):
            raise RetrainingError("not_promotable", f"v{target.version} is {target.status}; a model the gate refused "
                                  "or that failed never goes live")
        return self._go_live(target, actor, "rollback")

    def _go_live(self, row: VersionView, actor: str, action: str) -> VersionView:
        if not row.archive_path or not Path(row.archive_path).exists():
            raise RetrainingError("no_archive", f"v{row.version} has no model archive")
        self.progress(f"v{row.version}: loading into Rasa ({action})…")
        try:
            self.deployer.load(row.tenant_id, Path(row.archive_path))
        except RasaUnreachableError:
            # No Rasa is running (a CLI on a stopped stack): nothing refused the model, which the gate's
            # conversation tests already loaded; every replica loads it from the production file later.
            self.progress(f"v{row.version}: no Rasa server is running; it loads this version on the next turn")
        except DeploymentError as exc:
            self.registry.update(row.tenant_id, row.version, stage=None, error=f"{action} failed: {exc}"[:4000])
            raise RetrainingError("deployment_failed", str(exc)) from exc
        self.registry.mark_production(row.tenant_id, row.version, actor, action)
        live = self.registry.update(row.tenant_id, row.version, stage=None, error=None)
        self.progress(f"v{row.version} is in production ({action} by {actor})")
        return live

    def _registry_get(self, tenant_id: str, version: int) -> VersionView:
        try:
            return self.registry.get(tenant_id, version)
        except RegistryError as exc:
            raise RetrainingError(exc.code, exc.detail) from exc
