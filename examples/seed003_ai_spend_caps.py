"""Seed 003 end to end: included AI usage, a monthly overage cap that ignores promo credit, a weekly guardrail.

    python examples/seed003_ai_spend_caps.py

A customer's plan includes $50 of Claude usage a month (16,667 tokens at $0.0003). Two spend caps watch only the
overage, in dollars, and ignore spend a promo grant covers: $20 a month, and $15 a week resetting on Mondays, each
on its own clock. One `allow()` resolves all of it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from limitr_py import Limitr, ManualClock

POLICY = """
policy: {
    credits: {
        claude_sonnet_4: {
            description: 'Claude Sonnet 4 token'
            overhead_cost: 1.5e-7
            price: { amount: 0.0003 }
        }
    }
    plans: {
        starter: {
            label: 'Starter Plan'
            entitlements: {
                ai_chat: {
                    description: 'AI chat feature'
                    limit: {
                        credit: 'claude_sonnet_4'
                        mode: 'soft'        // allow overage & send overage events
                        value: 16667        // ~$50 included at $0.0003/token
                        resets: true
                        reset_sch: 'monthly:1'
                    }
                }
            }
        }
    }
}
"""


def build(start: datetime = datetime(2026, 3, 2, 9, tzinfo=UTC)) -> tuple[Limitr, ManualClock]:
    clock = ManualClock(start)  # Monday 2 March 2026
    policy = Limitr.new(POLICY, format="stof", clock=clock)
    policy.create_customer("cus_123", "starter", "user", "Jane Doe", metadata={"email": "jane@example.com"})
    policy.add_customer_cap(
        "cus_123", 20, cap_id="ai_overage_cap", overage_only=True, ignore_grants=True, reset_sch="monthly:1"
    )
    policy.add_customer_cap(
        "cus_123", 15, cap_id="ai_weekly_guardrail", overage_only=True, ignore_grants=True, reset_sch="weekly:mon"
    )
    return policy, clock


def caps(policy: Limitr) -> tuple[Decimal, Decimal]:
    monthly = policy.customer_cap("cus_123", "ai_overage_cap")
    weekly = policy.customer_cap("cus_123", "ai_weekly_guardrail")
    assert monthly is not None and weekly is not None
    return monthly.meter_value, weekly.meter_value


def main() -> None:
    policy, clock = build()
    policy.on(
        "meter-overage", lambda e: print(f"  bill ${e.payload['overage_price']} for {e.payload['overage']} tokens")
    )
    policy.on("cap-limit", lambda e: print(f"  denied by cap {e.payload['cap']['id']}"))
    for day, tokens in [(2, 16667), (2, 10000), (9, 10000), (9, 40000), (9, 1), (16, 10000), (16, 6000)]:
        clock.set(datetime(2026, 3, day, 12, tzinfo=UTC))
        allowed = policy.allow("cus_123", "ai_chat", tokens)
        monthly, weekly = caps(policy)
        print(
            f"March {day}: {tokens:>6} tokens -> {'allowed' if allowed else 'denied '}"
            f"  monthly cap ${monthly}  weekly cap ${weekly}"
        )


if __name__ == "__main__":
    main()
