"""``python -m gateway assistant {create,show,export,import,build,validate,score}``: a tenant's own assistant from the shell."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from gateway.assistants.assistant_settings import AssistantSettings
from gateway.assistants.assistant_store import AssistantError
from gateway.assistants.project_builder import AssistantProject, AssistantProjectBuilder, ProjectError
from gateway.assistants.templates import UnknownTemplateError, load_assistant_file, template_names
from gateway.settings import Settings

COMMANDS = {"assistant"}


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``assistant`` and its sub-commands."""
    assistant = sub.add_parser("assistant", help="a tenant's own assistant: create, export, import, build")
    actions = assistant.add_subparsers(dest="assistant_command", required=True)
    create = actions.add_parser("create", help="give a tenant its assistant from a template")
    create.add_argument("tenant")
    create.add_argument("--template", required=True, help=f"one of: {', '.join(template_names())}")
    create.add_argument("--business-name", help="the business as customers know it (default: the tenant's name)")
    create.add_argument("--assistant-name", help="how the assistant introduces itself")
    create.add_argument("--actor", default="cli")
    show = actions.add_parser("show", help="the tenant's assistant: template, settings, revision")
    show.add_argument("tenant")
    export = actions.add_parser("export", help="write the assistant as a Rasa project folder")
    export.add_argument("tenant")
    export.add_argument("folder", type=Path)
    imp = actions.add_parser("import", help="store a Rasa project folder as the tenant's assistant (validated)")
    imp.add_argument("tenant")
    imp.add_argument("folder", type=Path)
    imp.add_argument("--actor", default="cli")
    build = actions.add_parser("build", help="build the Rasa project of an assistant file (make train uses it)")
    build.add_argument("--from-file", type=Path, required=True, help="e.g. bot/tenants/northwind.yml")
    build.add_argument("--tenant", required=True)
    build.add_argument("folder", type=Path)
    check = actions.add_parser("validate", help="rasa data validate on an assistant file's project, warnings explained")
    check.add_argument("--from-file", type=Path, required=True, help="e.g. bot/tenants/northwind.yml")
    check.add_argument("--tenant", required=True)
    score = actions.add_parser("score", help="score a trained archive on its project's held-out sets (make train)")
    score.add_argument("archive", type=Path)
    score.add_argument("--project", type=Path, required=True, help="the folder `build` wrote")
    score.add_argument("--out", type=Path, required=True, help="metrics file, read when the archive is registered")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``assistant`` command; 0 on success, 2 on refused input."""
    try:
        if args.assistant_command == "build":
            return _build_from_file(args.from_file, args.tenant, args.folder)
        if args.assistant_command == "validate":
            return _validate_file(args.from_file, args.tenant)
        if args.assistant_command == "score":
            return _score(args.archive, args.project, args.out)
        from gateway.assistants.assistant_service import AssistantService
        from gateway.db.session import create_db_engine, create_session_factory

        engine = create_db_engine(settings.database_url)
        try:
            service = AssistantService(create_session_factory(engine))
            if args.assistant_command == "create":
                view = service.create(args.tenant, args.template, args.actor, args.business_name, args.assistant_name)
                print(f"{args.tenant}: assistant created from `{view.template}` (revision {view.revision}); "
                      f"train it with `python -m gateway retrain {args.tenant}`")
            elif args.assistant_command == "show":
                view = service.require(args.tenant)
                print(yaml.safe_dump(view.to_public(), sort_keys=False, allow_unicode=True), end="")
            elif args.assistant_command == "export":
                from gateway.learning.review_inbox import ReviewInbox
                from gateway.assistants.project_builder import ReviewedExample

                accepted = ReviewInbox(service.sessions).accepted(args.tenant)
                project = service.export(args.tenant, args.folder,
                                         [ReviewedExample(e.text, e.intent) for e in accepted if e.intent])
                print(f"{args.tenant}: exported to {args.folder} ({len(project.intents)} intents, "
                      f"skills: {', '.join(project.skills) or '-'})")
            elif args.assistant_command == "import":
                print(f"validating {args.folder} with Rasa…", flush=True)
                report = service.import_folder(args.tenant, args.folder, args.actor)
                for line in report.ignored:
                    print(f"note: {line}")
                print(f"{args.tenant}: imported as revision {report.assistant.revision} "
                      f"({len(report.intents)} intents; own texts: {', '.join(report.own_texts) or '-'}); "
                      f"train it with `python -m gateway retrain {args.tenant}`")
        finally:
            engine.dispose()
        return 0
    except (AssistantError, ProjectError, UnknownTemplateError) as exc:
        print(f"error: {getattr(exc, 'detail', None) or exc}", file=sys.stderr)
        return 2


def _project_of_file(path: Path, tenant_id: str, folder: Path) -> AssistantProject:
    """The Rasa project of an assistant file (template, settings and the template's language data)."""
    template, raw_settings = load_assistant_file(path)
    settings = AssistantSettings.model_validate(raw_settings)
    return AssistantProjectBuilder().build(folder, tenant_id, template, settings, template.language_data())


def _build_from_file(path: Path, tenant_id: str, folder: Path) -> int:
    project = _project_of_file(path, tenant_id, folder)
    print(f"{tenant_id}: Rasa project written to {folder} ({len(project.intents)} intents, "
          f"skills: {', '.join(project.skills) or '-'})")
    return 0


def _score(archive: Path, project: Path, out: Path) -> int:
    """Score a ``make train`` archive as the learning loop scores its versions, for the models page's v1."""
    import json

    from gateway.learning.base_model_scores import score_archive

    metrics = score_archive(archive, project)
    out.write_text(json.dumps(metrics, indent=1))
    print(f"{archive.name}: intent accuracy {metrics['intent_accuracy']:.4f}, macro F1 {metrics['intent_macro_f1']:.4f}, "
          f"conversation tests {metrics.get('conversation_tests', 1.0):.4f} (written to {out})")
    return 0


def _validate_file(path: Path, tenant_id: str) -> int:
    """Build the assistant file's project and validate it: 0 when every warning is explained, 1 otherwise."""
    import tempfile

    from gateway.assistants.data_validation import validate_project

    with tempfile.TemporaryDirectory(prefix="switchboard-validate-") as tmp:
        project = _project_of_file(path, tenant_id, Path(tmp))
        report = validate_project(project.domain, project.data, project.config)
    for line in report.errors:
        print(f"error: {line}")
    for line in report.unexplained:
        print(f"warning: {line}")
    if report.explained:
        print(f"{len(report.explained)} warnings of Rasa's validator are known blind spots (bot/skills.yml "
              f"unseen_by_rasa_validator): " + ", ".join(sorted(report.explained)))
    print(f"{tenant_id}: " + ("the data is clean" if report.clean
                              else f"{len(report.errors)} errors, {len(report.unexplained)} unexplained warnings"))
    return 0 if report.clean else 1
