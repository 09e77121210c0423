"""What the service tells about itself: its health, the models in force, its metrics."""

from __future__ import annotations

from collections.abc import Mapping

from docassist.pipelines import metrics
from docassist.pipelines.documents.upload_store import UploadStore
from docassist.pipelines.errors import NotFound, shown
from docassist.pipelines.health import HealthReport
from docassist.pipelines.health_monitor import HealthMonitor
from docassist.pipelines.lanes import Lane
from docassist.pipelines.llm.budget import Limits
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.settings import Settings
from docassist.pipelines.summaries.jobs.store import JobStore
from docassist.pipelines.views import EndpointView, ModelConfig


class ServiceInfo:
    def __init__(
        self, settings: Settings, limits: Limits, endpoints: Mapping[str, Endpoint], monitor: HealthMonitor,
        jobs: JobStore, uploads: UploadStore, lane: Lane,
    ) -> None:  # fmt: skip
        """`limits`: what one LLM call may cost; `lane`: where the metrics' job counts are read."""
        self.settings, self.limits, self.endpoints, self.monitor = settings, limits, endpoints, monitor
        self.jobs, self.uploads, self.lane = jobs, uploads, lane

    async def health(self, details: bool) -> HealthReport:
        """The monitor's current report (its checks run on their own threads, never behind work).
        `details`: with what failed and where (error texts name servers) — for operators."""
        report = await self.monitor.report()
        return report if details else report.without_details()

    def model_config(self, endpoint: str | None = None, internals: bool = False) -> ModelConfig:
        """The models in force; `internals` adds the servers' addresses (for operators)."""
        routing, eps = self.settings.profile.routing, self.endpoints
        name = endpoint or routing.answer
        if name not in eps:
            raise NotFound(f"no endpoint named {shown(name)}", endpoints=sorted(eps))
        return ModelConfig(
            endpoint=EndpointView.of(eps[name], internals),
            profile=self.settings.profile_name,
            max_tokens=self.limits.max_tokens,
            routing={"map": routing.map, "reduce": routing.reduce, "answer": routing.answer},
            endpoints={n: EndpointView.of(ep, internals) for n, ep in eps.items()},
        )

    async def metrics(self) -> tuple[bytes, str]:
        """The Prometheus text of this process (of every worker, with `serve --workers N`) and the
        deployment's jobs by state, and its content type. Read on the storage lane: it queries the
        database."""

        def counts() -> metrics.JobCounts:
            return metrics.JobCounts(summaries=self.jobs.counts(), uploads=self.uploads.counts())

        return await self.lane.run(lambda: metrics.scrape(counts))
