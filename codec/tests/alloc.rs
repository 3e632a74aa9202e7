//! Parsing a purchase request allocates nothing: a counting global allocator watches
//! `Message::parse` and the accessors the switch uses on a purchase.
//!
//! The count is per thread (other tests of this binary may run in parallel), and the one
//! test here keeps the measured region free of anything but codec calls.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use codec::{Field, Message, MessageBuilder, Mti, ResponseCode};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: the allocator can be called while the thread-local is being torn down.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let result = f();
    let after = ALLOCATIONS.with(Cell::get);
    (result, after - before)
}

/// The `purchase` vector of `shared/vectors/messages.json`.
const PURCHASE: &str = "303230307238000000C08010313636323930303031323334353637383933303030303030303030303030303031323334313132323038333031353030303132333136333031353131323254303030303030314D3030303030303030303030303031313536303036303030303031";

#[test]
fn parsing_a_purchase_allocates_nothing() {
    // Both kinds of `Bytes` the switch may hand over: a static one and one from a frame
    // (a `Vec`-backed buffer, as `BytesMut::split_to(..).freeze()` gives).
    let from_vec = Bytes::from(hex::decode(PURCHASE).unwrap());
    let from_static =
        Bytes::from_static(Box::leak(hex::decode(PURCHASE).unwrap().into_boxed_slice()));

    for bytes in [from_vec, from_static] {
        let (summary, count) = allocations(|| {
            let message = Message::parse(bytes).unwrap();
            let mut checksum = 0u64;
            checksum += message.amount_minor().unwrap();
            checksum += u64::from(message.stan().unwrap());
            checksum += u64::from(message.processing_code().unwrap());
            checksum += u64::from(message.batch().unwrap());
            checksum += message.pan().unwrap().len() as u64;
            checksum += message.terminal_id().unwrap().len() as u64;
            checksum += message.merchant_id().unwrap().len() as u64;
            checksum += message.transmission_time().unwrap().len() as u64;
            checksum += u64::from(message.currency().unwrap());
            checksum += u64::from(message.pin_block().is_none());
            checksum += u64::from(message.mac_input().is_none());
            checksum += message.fields().count() as u64;
            checksum += u64::from(message.has(Field::Pan));
            checksum
        });
        assert_eq!(
            summary,
            1234 + 123 + 1 + 16 + 8 + 15 + 10 + 156 + 1 + 1 + 11 + 1
        );
        assert_eq!(count, 0, "parsing a purchase allocated {count} times");
    }

    // Rejecting a malformed one allocates nothing either.
    let mut bad = hex::decode(PURCHASE).unwrap();
    bad[30] = b'x';
    let bad = Bytes::from(bad);
    let (result, count) = allocations(|| Message::parse(bad).map(|_| ()));
    assert!(result.is_err());
    assert_eq!(count, 0);

    // Building the response allocates its buffer and the output: two allocations, however
    // many fields.
    let request = Message::parse(Bytes::from(hex::decode(PURCHASE).unwrap())).unwrap();
    let echo = Mti::FINANCIAL_REQUEST.echoed_fields();
    let (built, count) = allocations(|| {
        let mut response = MessageBuilder::response_to(&request, echo);
        response.set_text(Field::SettlementDate, "1122").unwrap();
        response.set_text(Field::Rrn, "000000000042").unwrap();
        response.set_text(Field::ApprovalCode, "A00042").unwrap();
        response
            .set_text(Field::ResponseCode, ResponseCode::Approved.as_str())
            .unwrap();
        response
            .set_text(Field::AdditionalAmounts, "0002156C000000008766")
            .unwrap();
        response.build().unwrap()
    });
    assert_eq!(built.len(), 153);
    assert!(count <= 2, "building a response allocated {count} times");
}
