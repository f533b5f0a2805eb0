#include "server/event_hub.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

namespace tessera::server {
namespace {

std::vector<std::string> Data(EventSubscriber& subscriber, bool* overflowed = nullptr) {
  bool ignored = false;
  std::vector<std::string> out;
  for (const HubEvent& event : subscriber.TakeAll(overflowed ? overflowed : &ignored)) out.push_back(*event.data);
  return out;
}

TEST(EventHubTest, EverySubscriberGetsEveryEventInOrderWithIncreasingIds) {
  EventHub hub;
  auto a = hub.Subscribe("", std::nullopt);
  auto b = hub.Subscribe("", std::nullopt);
  EXPECT_EQ(hub.subscriber_count(), 2u);
  uint64_t first = hub.Publish("j1", false, "one");
  uint64_t second = hub.Publish("j2", false, "two");
  EXPECT_EQ(second, first + 1);
  const std::vector<std::string> expected = {"one", "two"};
  EXPECT_EQ(Data(*a), expected);
  EXPECT_EQ(Data(*b), expected);
  EXPECT_TRUE(Data(*a).empty());  // taken once
}

TEST(EventHubTest, AJobFilterKeepsOnlyThatJob) {
  EventHub hub;
  auto one = hub.Subscribe("j1", std::nullopt);
  hub.Publish("j2", false, "other");
  hub.Publish("j1", true, "mine");
  bool overflowed = false;
  auto events = one->TakeAll(&overflowed);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(*events[0].data, "mine");
  EXPECT_TRUE(events[0].final);
}

TEST(EventHubTest, LastEventIdReplaysWhatFollowsIt) {
  EventHub hub(10, 10, 3);
  hub.Publish("j", false, "e1");
  uint64_t seen = hub.Publish("j", false, "e2");
  hub.Publish("j", false, "e3");
  hub.Publish("j", false, "e4");
  auto resumed = hub.Subscribe("", seen);
  EXPECT_EQ(Data(*resumed), (std::vector<std::string>{"e3", "e4"}));
  // Only the last `replay` events are kept: from before them, what is kept.
  auto late = hub.Subscribe("", 0);
  EXPECT_EQ(Data(*late), (std::vector<std::string>{"e2", "e3", "e4"}));
  auto fresh = hub.Subscribe("", std::nullopt);
  EXPECT_TRUE(Data(*fresh).empty());
}

TEST(EventHubTest, ASlowSubscriberOverflowsAloneAndGetsNothingMore) {
  EventHub hub(10, 2);
  auto slow = hub.Subscribe("", std::nullopt);
  auto fast = hub.Subscribe("", std::nullopt);
  hub.Publish("j", false, "e1");
  EXPECT_EQ(Data(*fast), std::vector<std::string>{"e1"});
  hub.Publish("j", false, "e2");
  hub.Publish("j", false, "e3");
  EXPECT_EQ(Data(*fast), (std::vector<std::string>{"e2", "e3"}));
  bool overflowed = false;
  EXPECT_EQ(Data(*slow, &overflowed), (std::vector<std::string>{"e1", "e2"}));
  EXPECT_TRUE(overflowed);
  hub.Publish("j", false, "e4");
  EXPECT_TRUE(Data(*slow, &overflowed).empty());
  EXPECT_TRUE(overflowed);
  EXPECT_EQ(Data(*fast), std::vector<std::string>{"e4"});
}

TEST(EventHubTest, WakeIsCalledPerEventAndAtOnceWhenEventsWait) {
  EventHub hub;
  auto subscriber = hub.Subscribe("", std::nullopt);
  hub.Publish("j", false, "before");
  std::atomic<int> wakes{0};
  subscriber->SetWake([&] { wakes += 1; });
  EXPECT_EQ(wakes, 1);  // "before" was waiting
  hub.Publish("j", false, "after");
  EXPECT_EQ(wakes, 2);
  subscriber->SetWake(nullptr);
  hub.Publish("j", false, "unwatched");
  EXPECT_EQ(wakes, 2);
}

TEST(EventHubTest, CapOnSubscribersAndDroppingThePointerUnsubscribes) {
  EventHub hub(2);
  auto a = hub.Subscribe("", std::nullopt);
  auto b = hub.Subscribe("", std::nullopt);
  EXPECT_EQ(hub.Subscribe("", std::nullopt), nullptr);
  a.reset();
  EXPECT_EQ(hub.subscriber_count(), 1u);
  EXPECT_NE(hub.Subscribe("", std::nullopt), nullptr);
}

TEST(EventHubTest, CloseClosesAndWakesEverySubscriberAndRefusesNewOnes) {
  EventHub hub;
  auto subscriber = hub.Subscribe("", std::nullopt);
  int wakes = 0;
  subscriber->SetWake([&] { wakes += 1; });
  hub.Close();
  EXPECT_TRUE(subscriber->closed());
  EXPECT_EQ(wakes, 1);
  EXPECT_EQ(hub.Subscribe("", std::nullopt), nullptr);
}

std::vector<uint64_t> Ids(EventSubscriber& subscriber) {
  bool ignored = false;
  std::vector<uint64_t> out;
  for (const HubEvent& event : subscriber.TakeAll(&ignored)) out.push_back(event.id);
  return out;
}

TEST(EventHubTest, GivenIdsAreKeptAndAnIdNotAboveTheLastIsIgnored) {
  EventHub hub(10, 10, 10, EventIds::kGiven);
  auto all = hub.Subscribe("", std::nullopt);
  hub.PublishWithId(7, "j", false, "seven");
  hub.PublishWithId(12, "j", false, "twelve");
  hub.PublishWithId(12, "j", false, "twelve again");
  hub.PublishWithId(9, "j", false, "late nine");
  hub.PublishWithId(13, "k", true, "thirteen");
  EXPECT_EQ(Ids(*all), (std::vector<uint64_t>{7, 12, 13}));
  // Resumed with a given id: what follows it, by that id.
  auto resumed = hub.Subscribe("", 7);
  EXPECT_EQ(Data(*resumed), (std::vector<std::string>{"twelve", "thirteen"}));
}

TEST(EventHubTest, AClientResumingWithAGivenIdThisHubHasNotReachedGetsNothingUpToIt) {
  // Came from a server further on: events up to its id are not sent again
  // when this hub reaches them.
  EventHub hub(10, 10, 10, EventIds::kGiven);
  hub.PublishWithId(3, "j", false, "three");
  auto resumed = hub.Subscribe("", 5);
  hub.PublishWithId(4, "j", false, "four");
  hub.PublishWithId(5, "j", false, "five");
  hub.PublishWithId(6, "j", false, "six");
  EXPECT_EQ(Data(*resumed), std::vector<std::string>{"six"});
}

TEST(EventHubTest, CountedIdsHoldNothingBackFromAClientWhoseIdIsFromBeforeARestart) {
  EventHub hub(10, 10, 10);
  auto resumed = hub.Subscribe("", 500);
  hub.Publish("j", false, "one");
  EXPECT_EQ(Data(*resumed), std::vector<std::string>{"one"});
}

}  // namespace
}  // namespace tessera::server
