//! The orders, reservations and payments system of the manual's §12.4, in es.
//!
//! A `CreateOrder` command saved in the `commands` application makes `orders` create an
//! `Order`; `reservations` responds to a new order with a `Reservation`, which `orders`
//! records on the order; `payments` responds to a reserved order with a `Payment`, which
//! `orders` records too; finally `commands` marks the command done.
//!
//! ```text
//! commands | orders | reservations | orders | payments | orders | commands
//! ```
//!
//! The policies are `#[policy]` impl blocks; [`system`] only names who follows whom, so
//! the same system runs on any database, single-threaded or concurrently.

use es_runtime::prelude::*;
use es_runtime::process::{AppName, Policy, PolicyType, System};

/// The commands application: where users' `CreateOrder` commands are saved.
pub const COMMANDS: AppName = Commands::APP;
/// The orders application.
pub const ORDERS: AppName = Orders::APP;
/// The reservations application.
pub const RESERVATIONS: AppName = Reservations::APP;
/// The payments application.
pub const PAYMENTS: AppName = Payments::APP;

/// An order: created for a command, then reserved, then paid.
#[aggregate]
pub struct Order {
    command_id: Option<Uuid>,
    reservation_id: Option<Uuid>,
    payment_id: Option<Uuid>,
}

#[aggregate]
impl Order {
    /// A new order, for the command `command_id` if it came from one.
    #[event(Created)]
    pub fn create(command_id: Option<Uuid>) -> Self {
        Order {
            command_id,
            reservation_id: None,
            payment_id: None,
        }
    }

    #[event(Reserved)]
    fn reserved(&mut self, reservation_id: Uuid) {
        self.reservation_id = Some(reservation_id);
    }

    #[event(Paid)]
    fn paid(&mut self, payment_id: Uuid, command_id: Option<Uuid>) {
        self.payment_id = Some(payment_id);
        let _ = command_id;
    }

    /// Records the reservation; an order is reserved only once.
    pub fn set_is_reserved(&mut self, reservation_id: Uuid) -> Result<()> {
        if self.is_reserved() {
            return Err(Error::Concurrency(format!(
                "order {} is already reserved",
                self.id()
            )));
        }
        self.reserved(reservation_id)
    }

    /// Records the payment; an order is paid only once.
    pub fn set_is_paid(&mut self, payment_id: Uuid) -> Result<()> {
        if self.is_paid() {
            return Err(Error::Concurrency(format!(
                "order {} is already paid",
                self.id()
            )));
        }
        self.paid(payment_id, self.command_id)
    }

    /// The command the order was created for.
    pub fn command_id(&self) -> Option<Uuid> {
        self.command_id
    }
    /// The reservation, once reserved.
    pub fn reservation_id(&self) -> Option<Uuid> {
        self.reservation_id
    }
    /// The payment, once paid.
    pub fn payment_id(&self) -> Option<Uuid> {
        self.payment_id
    }
    /// True once reserved.
    pub fn is_reserved(&self) -> bool {
        self.reservation_id.is_some()
    }
    /// True once paid.
    pub fn is_paid(&self) -> bool {
        self.payment_id.is_some()
    }
}

/// A reservation for an order.
#[aggregate]
pub struct Reservation {
    order_id: Uuid,
}

#[aggregate]
impl Reservation {
    /// A reservation for order `order_id`.
    #[event(Created)]
    pub fn create(order_id: Uuid) -> Self {
        Reservation { order_id }
    }

    /// The order reserved.
    pub fn order_id(&self) -> Uuid {
        self.order_id
    }
}

/// A payment for an order.
#[aggregate]
pub struct Payment {
    order_id: Uuid,
}

#[aggregate]
impl Payment {
    /// A payment for order `order_id`.
    #[event(Created)]
    pub fn create(order_id: Uuid) -> Self {
        Payment { order_id }
    }

    /// The order paid.
    pub fn order_id(&self) -> Uuid {
        self.order_id
    }
}

/// A command from a user: "create an order". Remembers the order made for it, and is done
/// once the order is paid.
#[aggregate]
pub struct CreateOrder {
    #[attribute]
    order_id: Option<Uuid>,
    done: bool,
}

#[aggregate]
impl CreateOrder {
    /// A new command.
    #[event(Created)]
    pub fn create() -> Self {
        CreateOrder {
            order_id: None,
            done: false,
        }
    }

    /// Marks the command done.
    #[event(Done)]
    pub fn done(&mut self) {
        self.done = true;
    }

    /// The order made for the command.
    pub fn order_id(&self) -> Option<Uuid> {
        self.order_id
    }
    /// True once done.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// The orders policy: an order for each new command; reservations and payments recorded on
/// their orders.
#[derive(Default)]
pub struct Orders;

#[policy(name = "orders")]
impl Orders {
    async fn on_command(
        &self,
        ctx: &mut ProcessContext,
        e: &Event<create_order::Created>,
    ) -> Result<()> {
        ctx.save(Order::create(Some(e.originator_id()))?);
        Ok(())
    }

    async fn on_reservation(
        &self,
        ctx: &mut ProcessContext,
        e: &Event<reservation::Created>,
    ) -> Result<()> {
        let mut order: Order = ctx.get(e.order_id).await?;
        order.set_is_reserved(e.originator_id())?;
        ctx.save(order);
        Ok(())
    }

    async fn on_payment(
        &self,
        ctx: &mut ProcessContext,
        e: &Event<payment::Created>,
    ) -> Result<()> {
        let mut order: Order = ctx.get(e.order_id).await?;
        order.set_is_paid(e.originator_id())?;
        ctx.save(order);
        Ok(())
    }
}

/// The reservations policy: a reservation for each new order.
#[derive(Default)]
pub struct Reservations;

#[policy(name = "reservations")]
impl Reservations {
    async fn on_order(&self, ctx: &mut ProcessContext, e: &Event<order::Created>) -> Result<()> {
        ctx.save(Reservation::create(e.originator_id())?);
        Ok(())
    }
}

/// The payments policy: a payment for each reserved order.
#[derive(Default)]
pub struct Payments;

#[policy(name = "payments")]
impl Payments {
    async fn on_reserved(
        &self,
        ctx: &mut ProcessContext,
        e: &Event<order::Reserved>,
    ) -> Result<()> {
        ctx.save(Payment::create(e.originator_id())?);
        Ok(())
    }
}

/// The commands policy: a command learns its order, and is done when the order is paid.
#[derive(Default)]
pub struct Commands;

#[policy(name = "commands")]
impl Commands {
    async fn on_order(&self, ctx: &mut ProcessContext, e: &Event<order::Created>) -> Result<()> {
        if let Some(command_id) = e.command_id {
            let mut cmd: CreateOrder = ctx.get(command_id).await?;
            cmd.set_order_id(Some(e.originator_id()))?;
            ctx.save(cmd);
        }
        Ok(())
    }

    async fn on_paid(&self, ctx: &mut ProcessContext, e: &Event<order::Paid>) -> Result<()> {
        if let Some(command_id) = e.command_id {
            let mut cmd: CreateOrder = ctx.get(command_id).await?;
            cmd.done()?;
            ctx.save(cmd);
        }
        Ok(())
    }
}

/// The orders policy as a value (what the system makes for `orders`).
pub fn orders_policy() -> Policy {
    Orders.into_policy()
}

/// The reservations policy as a value.
pub fn reservations_policy() -> Policy {
    Reservations.into_policy()
}

/// The payments policy as a value.
pub fn payments_policy() -> Policy {
    Payments.into_policy()
}

/// The commands policy as a value.
pub fn commands_policy() -> Policy {
    Commands.into_policy()
}

/// The whole system of §12.4.4: commands, orders, reservations and payments.
pub fn system() -> System {
    System::new()
        .pipeline(COMMANDS | ORDERS | COMMANDS)
        .pipeline(ORDERS | RESERVATIONS | ORDERS)
        .pipeline(ORDERS | PAYMENTS | ORDERS)
        .policy::<Commands>()
        .policy::<Orders>()
        .policy::<Reservations>()
        .policy::<Payments>()
}

/// The system without commands (orders are saved in `orders` directly):
/// `orders | reservations | orders | payments | orders`, as the reference benchmark runs it.
pub fn orders_system() -> System {
    System::new()
        .pipeline(ORDERS | RESERVATIONS | ORDERS | PAYMENTS | ORDERS)
        .policy::<Orders>()
        .policy::<Reservations>()
        .policy::<Payments>()
}
