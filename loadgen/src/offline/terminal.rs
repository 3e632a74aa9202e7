//! One offline terminal, from sign-on to its closed batch: sign on, download the blacklist
//! (PROTOCOL.md 3.1), sell offline (STAN, local time, F60 kept with each sale), then upload:
//! 0220 advices (3.8), re-sent ones as 0221, and the batch close 0500 920000; if that is out
//! of balance (`95`), every sale as 0320 and 0500 960000 (3.9).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use codec::{BuildError, Field, Message, Mti};
use futures::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{watch, OwnedSemaphorePermit};

use super::report::TerminalTally;
use super::sales::{self, PlannedSale};
use super::{Shared, Stage};
use crate::clock::WireTime;
use crate::requests::{
    BatchTotals, OfflineSale, Outgoing, RequestBuilder, CLOSE_AFTER_UPLOAD, CLOSE_BATCH,
};
use crate::session::{self, Link};
use crate::stats::Failure;

/// How a terminal's batch ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Closed {
    InBalance,
    AfterUpload,
}

struct Terminal {
    shared: Arc<Shared>,
    requests: RequestBuilder,
    tally: TerminalTally,
}

/// Runs terminal `index` through its shift; its tally goes into the shared report.
pub async fn run(
    shared: Arc<Shared>,
    index: usize,
    mut stage: watch::Receiver<Stage>,
    sign_on: OwnedSemaphorePermit,
) {
    let spec = shared.fleet.terminals[index].clone();
    let mut terminal = Terminal {
        requests: RequestBuilder::new(spec, &shared.fleet.tak),
        shared: shared.clone(),
        tally: TerminalTally::default(),
    };
    let link = terminal.sign_on_and_download().await;
    drop(sign_on);
    let mut link = match link {
        Ok(link) => link,
        Err(failure) => {
            terminal.tally.failed(failure);
            shared.report.add(terminal.tally);
            shared.downloaded.fetch_add(1, Ordering::AcqRel);
            shared.prepared.fetch_add(1, Ordering::AcqRel);
            return;
        }
    };
    shared.downloaded.fetch_add(1, Ordering::AcqRel);
    if stage.wait_for(|s| *s >= Stage::Sell).await.is_err() {
        return;
    }
    let sales = terminal.sell_offline(index);
    shared.prepared.fetch_add(1, Ordering::AcqRel);
    if stage.wait_for(|s| *s >= Stage::Upload).await.is_err() {
        return;
    }
    match terminal.upload(&mut link, &sales).await {
        Ok(closed) => terminal.tally.closed = Some(closed),
        Err(failure) => terminal.tally.failed(failure),
    }
    shared.report.add(terminal.tally);
}

impl Terminal {
    async fn sign_on_and_download(&mut self) -> Result<Link, Failure> {
        let timeout = self.shared.timeout;
        let mut link =
            session::connect_signed_on(self.shared.addr, &mut self.requests, timeout).await?;
        self.tally.signed_on = true;
        // 3.1: repeat with the version received until the flag says no more pages.
        let mut version = 0u64;
        loop {
            let request = self
                .requests
                .blacklist_download(version)
                .map_err(|_| Failure::SignOn)?;
            let mti = request.mti;
            let response = session::exchange(&mut link, &self.requests, request, timeout).await?;
            let code = self.tally.answered(mti, &response);
            let page = response.get_str(Field::PrivateData).unwrap_or("");
            let next: Option<u64> = page.get(..12).and_then(|v| v.parse().ok());
            match (&code, next, page.as_bytes().get(12)) {
                (b"00", Some(next), Some(b'1')) if next > version => version = next,
                // The last page, or a host that serves no blacklist (the echo host).
                _ => return Ok(link),
            }
        }
    }

    /// The shift: every planned sale approved offline and kept, with its STAN and local time.
    fn sell_offline(&mut self, index: usize) -> Vec<(PlannedSale, OfflineSale)> {
        let shared = &self.shared;
        let mut rng = StdRng::from_entropy();
        let planned = sales::plan(
            shared.sales_per_terminal,
            shared.shares,
            shared.roles,
            shared.fleet.plan.card_balance_minor,
            &mut rng,
        );
        let local = WireTime::local_now(shared.utc_offset_minutes).f7;
        let kept: Vec<_> = planned
            .into_iter()
            .map(|plan| {
                let sale = OfflineSale {
                    card: plan.card,
                    amount_minor: plan.amount_minor,
                    stan: self.requests.take_stan(),
                    local,
                };
                if plan.case.charges_card() {
                    shared.charged[plan.card].fetch_add(plan.amount_minor, Ordering::Relaxed);
                }
                (plan, sale)
            })
            .collect();
        self.tally.planned(&kept);
        tracing::debug!(terminal = index, sales = kept.len(), "offline shift over");
        kept
    }

    /// Catch-up: advices, re-sent advices, the batch close, and the upload if it is needed.
    async fn upload(
        &mut self,
        link: &mut Link,
        sales: &[(PlannedSale, OfflineSale)],
    ) -> Result<Closed, Failure> {
        let shared = self.shared.clone();
        let cards = &shared.fleet.cards;
        let sent: Vec<&OfflineSale> = sales
            .iter()
            .filter(|(plan, _)| !plan.lost)
            .map(|(_, sale)| sale)
            .collect();
        let resent: Vec<&OfflineSale> = sales
            .iter()
            .filter(|(plan, _)| plan.resent)
            .map(|(_, sale)| sale)
            .collect();
        let mut rrns: HashMap<u32, Option<Bytes>> = HashMap::with_capacity(sent.len());
        let (requests, tally) = (&self.requests, &mut self.tally);
        let depth = self.shared.depth;
        let timeout = self.shared.timeout;
        let advice = |i: usize| requests.advice(sent[i], &cards[sent[i].card], false);
        pipeline(
            link,
            requests,
            sent.len(),
            advice,
            depth,
            timeout,
            |response| {
                if &tally.answered(Mti::FINANCIAL_ADVICE, response) == b"00" {
                    tally.advices_acknowledged += 1;
                }
                let stan = response.stan().expect("matched by F11");
                rrns.insert(stan, response.get_bytes(Field::Rrn));
            },
        )
        .await?;
        let again = |i: usize| requests.advice(resent[i], &cards[resent[i].card], true);
        pipeline(
            link,
            requests,
            resent.len(),
            again,
            depth,
            timeout,
            |response| {
                tally.answered(Mti::FINANCIAL_ADVICE_REPEAT, response);
                let stan = response.stan().expect("matched by F11");
                let first = rrns.get(&stan).cloned().flatten();
                // The host found the first advice's record: it answers with that sale's RRN.
                if first.is_some() && first == response.get_bytes(Field::Rrn) {
                    tally.duplicates_detected += 1;
                }
            },
        )
        .await?;

        let totals = sales
            .iter()
            .fold(BatchTotals::default(), |t, (_, sale)| BatchTotals {
                purchase_count: t.purchase_count + 1,
                purchase_minor: t.purchase_minor + sale.amount_minor,
            });
        match &self.settle(link, CLOSE_BATCH, totals).await? {
            b"00" => return Ok(Closed::InBalance),
            b"95" => {}
            _ => return Err(Failure::Unmatched),
        }
        let (requests, tally) = (&self.requests, &mut self.tally);
        let upload = |i: usize| requests.upload(&sales[i].1, &cards[sales[i].1.card]);
        pipeline(
            link,
            requests,
            sales.len(),
            upload,
            depth,
            timeout,
            |response| {
                tally.answered(Mti::BATCH_UPLOAD, response);
            },
        )
        .await?;
        match &self.settle(link, CLOSE_AFTER_UPLOAD, totals).await? {
            b"00" => Ok(Closed::AfterUpload),
            _ => Err(Failure::Unmatched),
        }
    }

    /// Sends an 0500 and returns its F39.
    async fn settle(
        &mut self,
        link: &mut Link,
        processing: u64,
        totals: BatchTotals,
    ) -> Result<[u8; 2], Failure> {
        let request = self
            .requests
            .settlement(processing, totals)
            .map_err(|_| Failure::Unparsable)?;
        let response =
            session::exchange(link, &self.requests, request, self.shared.timeout).await?;
        Ok(self.tally.answered(Mti::RECONCILIATION_REQUEST, &response))
    }
}

/// Sends requests `build(0..count)` with up to `depth` in flight and hands each checked
/// response to `on_response`, in whatever order they come. Within one call STANs are unique.
/// Fails on the first request not answered within `timeout` of the last progress, or a bad
/// response.
async fn pipeline(
    link: &mut Link,
    builder: &RequestBuilder,
    count: usize,
    build: impl Fn(usize) -> Result<Outgoing, BuildError>,
    depth: usize,
    timeout: Duration,
    mut on_response: impl FnMut(&Message),
) -> Result<(), Failure> {
    let mut next = 0;
    let mut in_flight: HashMap<u32, Mti> = HashMap::with_capacity(depth);
    loop {
        let mut wrote = false;
        while in_flight.len() < depth && next < count {
            let request = build(next).map_err(|error| {
                tracing::error!(%error, "could not build an offline request");
                Failure::Unparsable
            })?;
            next += 1;
            let previous = in_flight.insert(request.stan, request.mti);
            assert!(previous.is_none(), "one request per STAN in flight");
            link.feed(request.bytes)
                .await
                .map_err(|_| Failure::Disconnected)?;
            wrote = true;
        }
        if wrote {
            SinkExt::<Bytes>::flush(link)
                .await
                .map_err(|_| Failure::Disconnected)?;
        }
        if in_flight.is_empty() && next == count {
            return Ok(());
        }
        let frame = tokio::time::timeout(timeout, link.next())
            .await
            .map_err(|_| Failure::Timeout)?;
        let Some(Ok(bytes)) = frame else {
            return Err(Failure::Disconnected);
        };
        let response = Message::parse(bytes).map_err(|_| Failure::Unparsable)?;
        let stan = response.stan().ok_or(Failure::Unmatched)?;
        let mti = in_flight.remove(&stan).ok_or(Failure::Unmatched)?;
        session::check_response(builder, &response, mti, stan)?;
        on_response(&response);
    }
}
