#include "server/event_hub.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <vector>

namespace tessera::server {
namespace {

using std::chrono::milliseconds;

// Long enough never to expire in a passing test: a Next that returns before it
// did so because something woke it.
constexpr milliseconds kForever{std::chrono::hours(1)};

// Everything queued for `subscription` right now, in order.
std::vector<std::string> Drain(EventHub::Subscription& subscription) {
  std::vector<std::string> events;
  while (auto event = subscription.Next(milliseconds(0))) events.push_back(*event);
  return events;
}

TEST(EventHubTest, EverySubscriberGetsEveryEventInOrder) {
  EventHub hub;
  auto a = hub.Subscribe();
  auto b = hub.Subscribe();
  auto c = hub.Subscribe();
  EXPECT_EQ(hub.subscriber_count(), 3u);
  hub.Publish("one");
  hub.Publish("two");
  hub.Publish("three");
  const std::vector<std::string> expected = {"one", "two", "three"};
  EXPECT_EQ(Drain(*a), expected);
  EXPECT_EQ(Drain(*b), expected);
  EXPECT_EQ(Drain(*c), expected);
  EXPECT_EQ(a->dropped(), 0u);
}

TEST(EventHubTest, ASubscriberOnlySeesEventsPublishedAfterItSubscribed) {
  EventHub hub;
  hub.Publish("before");
  auto late = hub.Subscribe();
  hub.Publish("after");
  EXPECT_EQ(Drain(*late), std::vector<std::string>{"after"});
}

TEST(EventHubTest, AFullQueueDropsTheOldestAndCountsThem) {
  EventHub hub(2);
  auto slow = hub.Subscribe();
  auto fast = hub.Subscribe();
  hub.Publish("e1");
  EXPECT_EQ(fast->Next(milliseconds(0)), "e1");
  hub.Publish("e2");
  hub.Publish("e3");
  hub.Publish("e4");
  EXPECT_EQ(Drain(*slow), (std::vector<std::string>{"e3", "e4"}));
  EXPECT_EQ(slow->dropped(), 2u);
  // The reader that kept up lost nothing beyond its own bound.
  EXPECT_EQ(Drain(*fast), (std::vector<std::string>{"e3", "e4"}));
  EXPECT_EQ(fast->dropped(), 1u);
}

TEST(EventHubTest, DroppedKeepsCountingAcrossReads) {
  EventHub hub(1);
  auto subscription = hub.Subscribe();
  hub.Publish("a");
  hub.Publish("b");  // drops a
  EXPECT_EQ(subscription->Next(milliseconds(0)), "b");
  hub.Publish("c");
  hub.Publish("d");  // drops c
  EXPECT_EQ(subscription->Next(milliseconds(0)), "d");
  EXPECT_EQ(subscription->dropped(), 2u);
}

TEST(EventHubTest, NextTimesOutWithNothing) {
  EventHub hub;
  auto subscription = hub.Subscribe();
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(subscription->Next(milliseconds(20)), std::nullopt);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(20));  // it did wait
}

TEST(EventHubTest, APublishWakesAWaitingNext) {
  EventHub hub;
  auto subscription = hub.Subscribe();
  auto next = std::async(std::launch::async, [&] { return subscription->Next(kForever); });
  hub.Publish("wake");
  ASSERT_EQ(next.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(next.get(), "wake");
}

TEST(EventHubTest, CloseWakesAWaitingNextWithNothing) {
  EventHub hub;
  auto subscription = hub.Subscribe();
  auto next = std::async(std::launch::async, [&] { return subscription->Next(kForever); });
  hub.Close();
  // Without the wake-up this Next would wait an hour.
  ASSERT_EQ(next.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(next.get(), std::nullopt);
  EXPECT_EQ(hub.subscriber_count(), 0u);
}

TEST(EventHubTest, AfterCloseNothingIsDeliveredAndNextReturnsAtOnce) {
  EventHub hub;
  auto before = hub.Subscribe();
  hub.Close();
  hub.Publish("late");
  auto after = hub.Subscribe();
  EXPECT_EQ(before->Next(kForever), std::nullopt);
  EXPECT_EQ(after->Next(kForever), std::nullopt);
  EXPECT_EQ(hub.subscriber_count(), 0u);
}

TEST(EventHubTest, UnsubscribeStopsDeliveryToThatSubscriberOnly) {
  EventHub hub;
  auto leaving = hub.Subscribe();
  auto staying = hub.Subscribe();
  hub.Unsubscribe(leaving);
  EXPECT_EQ(hub.subscriber_count(), 1u);
  hub.Publish("after");
  EXPECT_EQ(leaving->Next(milliseconds(0)), std::nullopt);
  EXPECT_EQ(staying->Next(milliseconds(0)), "after");
  hub.Unsubscribe(leaving);  // twice: harmless
  EXPECT_EQ(hub.subscriber_count(), 1u);
}

}  // namespace
}  // namespace tessera::server
